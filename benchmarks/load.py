"""Two replicas under load (a benchmark, not a test): 16 staff asking while an admin uploads 50 files.

Two real `kb serve` processes share one database (a private PostgreSQL on loopback, or one
SQLite file) and one data directory, as replicas behind a load balancer would. The bundled
samples are ingested first. Then, at the same moment, an admin uploads 50 generated
three-page PDFs in batches of 5 (batches alternate between the replicas) and 16 readers
each ask sample questions over the streaming API (askers alternate between the replicas),
while `/metrics` of both is scraped every second for the queue lengths. Reported: every
response's status (the goal: no 5xx), per-route latency p50/p95, the peak queue lengths,
and whether either server log holds "database is locked" or a traceback.

    .venv/bin/python -m benchmarks.load                      # PostgreSQL
    .venv/bin/python -m benchmarks.load --database sqlite
    .venv/bin/python -m benchmarks.load --askers 8 --files 20 --questions-each 1
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import threading
import time
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path

import httpx

from app.service import KnowledgeBase
from benchmarks.answer_latency import percentile
from benchmarks.ask_crowd import ask_streaming, maintenance_logs
from tests.conftest import make_settings
from tests.postgres import running_postgres
from tests.servers import kb_server

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
QUEUE_LINE = re.compile(r'^mmkb_queue_length\{queue="([^"]+)"\} ([0-9.e+]+)$', re.MULTILINE)


class Record:
    """Every request's route, status and seconds, from all threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows: list[tuple[str, int, float]] = []
        self.quote_s: list[float] = []
        self.queue_peaks: dict[str, float] = defaultdict(float)

    def add(self, route: str, status: int, seconds: float) -> None:
        with self.lock:
            self.rows.append((route, status, seconds))


def _ask(url: str, headers: dict, question: str, record: Record) -> None:
    """One question over the streaming API (benchmarks.ask_crowd's asker); a stream that
    ended without its answer counts as failed."""
    outcome: dict = {}
    started = time.perf_counter()
    ask_streaming(url, headers, question, outcome)
    status = outcome.get("status", 598)  # none: the connection failed
    if status == 200 and "answer_s" not in outcome:
        status = 599  # the stream ended in an error event, not an answer
    with record.lock:
        if "quote_s" in outcome:
            record.quote_s.append(outcome["quote_s"])
    record.add("POST /api/ask/stream", status, time.perf_counter() - started)


def _upload(url: str, headers: dict, paths: list[Path], record: Record) -> None:
    started = time.perf_counter()
    files = [("files", (p.name, p.read_bytes(), "application/pdf")) for p in paths]
    try:
        status = httpx.post(f"{url}/api/collections/logs/documents", files=files, headers=headers, timeout=1800).status_code
    except httpx.HTTPError:
        status = 598
    record.add("POST /api/collections/{name}/documents", status, time.perf_counter() - started)


def _scrape(urls: list[str], record: Record, stop: threading.Event) -> None:
    while not stop.is_set():
        for url in urls:
            started = time.perf_counter()
            try:
                response = httpx.get(f"{url}/metrics", timeout=30)
                record.add("GET /metrics", response.status_code, time.perf_counter() - started)
                for queue, value in QUEUE_LINE.findall(response.text):
                    with record.lock:
                        record.queue_peaks[f"{url[-5:]} {queue}"] = max(record.queue_peaks[f"{url[-5:]} {queue}"], float(value))
            except httpx.HTTPError:
                record.add("GET /metrics", 598, time.perf_counter() - started)
        stop.wait(1.0)


def run(database: str, askers: int, files: int, questions_each: int, work: Path) -> None:
    data = work / "data"
    questions = [q["question"] for q in json.loads((SAMPLES / "questions.json").read_text()) if q.get("file")]
    with ExitStack() as stack:
        url = stack.enter_context(running_postgres()) if database == "postgresql" else None
        env = {"DATABASE_URL": url} if url else {}
        settings = make_settings(data).model_copy(update={"database_url": url})
        setup_started = time.perf_counter()
        kb = KnowledgeBase(settings)
        try:
            kb.ingest(kb.system_user(), "samples", paths=[SAMPLES / "collection"])
            kb.accounts.create_user("admin", "admin-password", is_admin=True)
            for n in range(askers):
                kb.accounts.create_user(f"reader{n}", f"reader{n}-password")
                kb.grant(f"reader{n}", "samples")
        finally:
            kb.close()
        replicas = [stack.enter_context(kb_server(data, log=work / f"replica-{name}.log", env=env))[0] for name in ("a", "b")]
        print(f"setup (samples ingested, accounts, 2 replicas up): {time.perf_counter() - setup_started:.0f} s")
        tokens = {}
        for name in ["admin"] + [f"reader{n}" for n in range(askers)]:
            response = httpx.post(
                f"{replicas[0]}/api/tokens", json={"username": name, "password": f"{name}-password"}, timeout=60
            )
            tokens[name] = {"Authorization": f"Bearer {response.json()['token']}"}
        # Both replicas' models loaded before the clock starts: one warm-up question each.
        for replica in replicas:
            _ask(replica, tokens["reader0"], questions[0], Record())

        record = Record()
        logs = maintenance_logs(work, files)
        stop = threading.Event()
        scraper = threading.Thread(target=_scrape, args=(replicas, record, stop))
        batches = [logs[i : i + 5] for i in range(0, len(logs), 5)]

        def uploading() -> None:
            for index, batch in enumerate(batches):
                _upload(replicas[index % 2], tokens["admin"], batch, record)

        def asking(n: int) -> None:
            for round_ in range(questions_each):
                _ask(replicas[n % 2], tokens[f"reader{n}"], questions[(n + round_ * askers) % len(questions)], record)

        workers = [threading.Thread(target=uploading)] + [threading.Thread(target=asking, args=(n,)) for n in range(askers)]
        started = time.perf_counter()
        scraper.start()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        stop.set()
        scraper.join()
        elapsed = time.perf_counter() - started
        log_text = "".join((work / f"replica-{name}.log").read_text(errors="replace") for name in ("a", "b"))

    print(
        f"\n{database}: 2 replicas, {askers} askers x {questions_each} question(s), {files} files uploaded in batches of 5; {elapsed:.0f} s\n"
    )
    print("| route | requests | 2xx | 4xx | 5xx or failed | p50 s | p95 s | max s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    by_route: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for route, status, seconds in record.rows:
        by_route[route].append((status, seconds))
    for route, rows in sorted(by_route.items()):
        durations = [s for _, s in rows]
        ok = sum(1 for status, _ in rows if 200 <= status < 300)
        client = sum(1 for status, _ in rows if 400 <= status < 500)
        failed = sum(1 for status, _ in rows if status >= 500 or status == 0)
        print(
            f"| {route} | {len(rows)} | {ok} | {client} | {failed} | {percentile(durations, 0.5):.2f} | "
            f"{percentile(durations, 0.95):.2f} | {max(durations):.2f} |"
        )
    print(
        f"| (time to the verified quote, ask/stream) | {len(record.quote_s)} | | | | {percentile(record.quote_s, 0.5):.2f} | "
        f"{percentile(record.quote_s, 0.95):.2f} | {max(record.quote_s, default=float('nan')):.2f} |"
    )
    print(
        "\npeak queue lengths from /metrics (replica port, queue): "
        + ", ".join(f"{k}: {v:g}" for k, v in sorted(record.queue_peaks.items()))
    )
    print(f'server logs: "database is locked" x{log_text.count("database is locked")}, tracebacks x{log_text.count("Traceback")}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--askers", type=int, default=16)
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--questions-each", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mmkb-load-") as work:
        run(args.database, args.askers, args.files, args.questions_each, Path(work))


if __name__ == "__main__":
    main()
