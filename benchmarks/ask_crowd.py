"""Eight askers at once during a 20-file upload, on a real server (a benchmark, not a test).

A server (uvicorn on loopback, the shipped settings and models) holds the bundled samples;
an admin uploads 20 generated three-page PDFs through the API while N readers each ask a
different sample question over the streaming API at the same moment. Per asker: when the
verified quote arrived, when the answer was done, and whether it was answered. Run once per
ingest niceness (--niceness 10,0), alternating, so that machine drift hits both alike.

    .venv/bin/python -m benchmarks.ask_crowd                     # 8 askers, niceness 10 then 0
    .venv/bin/python -m benchmarks.ask_crowd --askers 4 --niceness 10
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pymupdf as fitz

from app.service import KnowledgeBase
from app.settings import Settings
from benchmarks.answer_latency import percentile
from ui.server import create_app

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"


def _serve(app) -> tuple[str, object, threading.Thread]:
    import socket

    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.1)
    return f"http://127.0.0.1:{port}", server, thread


def maintenance_logs(folder: Path, count: int) -> list[Path]:
    """``count`` born-digital three-page PDFs to upload while questions are asked (also used by tests/test_ask_queue.py)."""
    paths = []
    for n in range(count):
        document = fitz.open()
        for page_number in range(3):
            page = document.new_page()
            page.insert_textbox(fitz.Rect(56, 72, 540, 780), f"Maintenance log {n}, page {page_number}. " * 40, fontsize=10)
        path = folder / f"log-{n:02d}.pdf"
        document.save(path)
        paths.append(path)
    return paths


def ask_streaming(url: str, headers: dict, question: str, outcome: dict) -> None:
    """One question over /api/ask/stream; fills outcome with status, quote_s, answer_s, supported or error."""
    started = time.perf_counter()
    try:
        with httpx.stream(
            "POST",
            f"{url}/api/ask/stream",
            json={"question": question, "collections": ["samples"]},
            headers=headers,
            timeout=1800,
        ) as response:
            outcome["status"] = response.status_code
            name = None
            for line in response.iter_lines():
                if line.startswith("event:"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and name:
                    if name == "quote":
                        outcome.setdefault("quote_s", time.perf_counter() - started)
                    elif name == "answer":
                        outcome["answer_s"] = time.perf_counter() - started
                        outcome["supported"] = json.loads(line[5:])["supported"]
                    name = None
    except httpx.HTTPError as exc:
        outcome["error"] = repr(exc)


def run(niceness: int, askers: int, questions: list[str], work: Path) -> dict:
    settings = Settings(data_dir=work / f"data-{niceness}-{time.monotonic_ns()}", database_url=None, ingest_niceness=niceness)
    kb = KnowledgeBase(settings)
    kb.preload_models()
    kb.ingest(kb.system_user(), "samples", paths=[SAMPLES / "collection"])
    kb.accounts.create_user("admin", "admin-password", is_admin=True)
    for n in range(askers):
        kb.accounts.create_user(f"reader{n}", f"reader{n}-password")
        kb.grant(f"reader{n}", "samples")
    url, server, thread = _serve(create_app(kb, mount_ui=False))
    try:
        tokens = {}
        for name in ["admin"] + [f"reader{n}" for n in range(askers)]:
            response = httpx.post(f"{url}/api/tokens", json={"username": name, "password": f"{name}-password"})
            tokens[name] = {"Authorization": f"Bearer {response.json()['token']}"}
        files = [("files", (p.name, p.read_bytes(), "application/pdf")) for p in maintenance_logs(work, 20)]
        upload: dict = {}

        def uploading() -> None:
            started = time.perf_counter()
            response = httpx.post(f"{url}/api/collections/logs/documents", files=files, headers=tokens["admin"], timeout=1800)
            upload.update(status=response.status_code, seconds=time.perf_counter() - started)

        uploader = threading.Thread(target=uploading)
        uploader.start()
        time.sleep(2.0)
        outcomes = [dict() for _ in range(askers)]
        threads = [
            threading.Thread(target=ask_streaming, args=(url, tokens[f"reader{n}"], questions[n % len(questions)], outcomes[n]))
            for n in range(askers)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        uploader.join()
    finally:
        server.should_exit = True
        thread.join(30)
        kb.close()
    quotes = [o["quote_s"] for o in outcomes if "quote_s" in o]
    answers = [o["answer_s"] for o in outcomes if "answer_s" in o]
    return {
        "niceness": niceness,
        "askers": askers,
        "answered": len(answers),
        "quotes": len(quotes),
        "quote_p50": percentile(quotes, 0.5),
        "quote_max": max(quotes, default=float("nan")),
        "answer_p50": percentile(answers, 0.5),
        "answer_max": max(answers, default=float("nan")),
        "upload_s": upload.get("seconds", float("nan")),
        "upload_status": upload.get("status"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--askers", type=int, default=8)
    parser.add_argument("--niceness", default="10,0", help="comma-separated ingest niceness values, run in turn")
    args = parser.parse_args()
    questions = [q["question"] for q in json.loads((SAMPLES / "questions.json").read_text()) if q.get("answer")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="mmkb-crowd-") as tmp:
        for niceness in [int(v) for v in args.niceness.split(",")]:
            rows.append(run(niceness, args.askers, questions, Path(tmp)))
            print(json.dumps(rows[-1]), flush=True)
    print("\n| ingest niceness | askers | answered | quote p50 s | quote max s | answer p50 s | answer max s | upload s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['niceness']} | {r['askers']} | {r['answered']}/{r['askers']} | {r['quote_p50']:.2f} | {r['quote_max']:.2f} "
            f"| {r['answer_p50']:.1f} | {r['answer_max']:.1f} | {r['upload_s']:.1f} ({r['upload_status']}) |"
        )


if __name__ == "__main__":
    main()
