"""A crowd of askers on a real server (uvicorn on loopback, the real packaged generator): every
question is answered in its turn while an upload runs, a question whose client has gone stops
at once, and one asker cannot take every place. Answers are kept short (max_new_tokens) so
that eight of them fit the suite's time; benchmarks/ask_crowd.py measures full ones."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from app.service import KnowledgeBase
from benchmarks.ask_crowd import maintenance_logs
from tests.conftest import SAMPLES, make_settings
from tests.servers import serving
from ui.server import create_app

QUESTION = "How long after a trip do employees have to hand in their expense claim?"  # samples/questions.json
ASKERS = 8


@pytest.fixture(scope="module")
def crowd_site(tmp_path_factory, models):
    kb = KnowledgeBase(make_settings(tmp_path_factory.mktemp("crowd-data"), max_new_tokens=32), models=models)
    report = kb.ingest(kb.system_user(), "travel", paths=[SAMPLES / "employee-travel-policy.pdf"])
    assert not report.failed, report.failed
    kb.accounts.create_user("admin", "admin-password", is_admin=True)
    for n in range(ASKERS):
        kb.accounts.create_user(f"reader{n}", f"reader{n}-password")
        kb.grant(f"reader{n}", "travel")
    with serving(create_app(kb, mount_ui=False)) as url:
        tokens = {}
        for name in ["admin"] + [f"reader{n}" for n in range(ASKERS)]:
            response = httpx.post(f"{url}/api/tokens", json={"username": name, "password": f"{name}-password"})
            tokens[name] = {"Authorization": f"Bearer {response.json()['token']}"}
        yield {"url": url, "kb": kb, "tokens": tokens}
    kb.close()


def _gauge(url: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    return float(next(line for line in text.splitlines() if line.startswith(f'mmkb_queue_length{{queue="{name}"}}')).split()[-1])


def _ask(url: str, headers: dict, outcome: dict) -> None:
    started = time.perf_counter()
    with httpx.stream(
        "POST", f"{url}/api/ask/stream", json={"question": QUESTION, "collections": ["travel"]}, headers=headers, timeout=900
    ) as response:
        outcome["status"] = response.status_code
        name = None
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and name:
                if name == "quote" and "quote_s" not in outcome:
                    outcome["quote_s"] = time.perf_counter() - started
                if name == "queue":
                    outcome.setdefault("ahead", []).append(json.loads(line[5:])["ahead"])
                if name == "answer":
                    outcome["answer"] = json.loads(line[5:])
                    outcome["answer_s"] = time.perf_counter() - started
                name = None


def test_eight_askers_during_an_upload_are_all_answered_in_turn(crowd_site, tmp_path):
    url, tokens = crowd_site["url"], crowd_site["tokens"]
    upload_done: dict = {}

    def upload() -> None:
        files = [("files", (path.name, path.read_bytes(), "application/pdf")) for path in maintenance_logs(tmp_path, 20)]
        response = httpx.post(f"{url}/api/collections/logs/documents", files=files, headers=tokens["admin"], timeout=900)
        upload_done["status"] = response.status_code

    uploader = threading.Thread(target=upload)
    uploader.start()
    time.sleep(1.0)  # the upload is under way
    outcomes = [dict() for _ in range(ASKERS)]
    askers = [threading.Thread(target=_ask, args=(url, tokens[f"reader{n}"], outcomes[n])) for n in range(ASKERS)]
    for asker in askers:
        asker.start()
    for asker in askers:
        asker.join(900)
    uploader.join(900)
    assert upload_done.get("status") == 200
    for outcome in outcomes:
        assert outcome.get("status") == 200, outcome
        answer = outcome["answer"]
        assert answer["supported"] and "30" in answer["text"], answer["text"]
        # Every asker saw the verified quote before its answer was written.
        assert outcome["quote_s"] < outcome["answer_s"]
    # The generator wrote one answer at a time; those who waited were told their place.
    assert any(outcome.get("ahead") for outcome in outcomes)
    assert all(places == sorted(places, reverse=True) for places in (o.get("ahead", []) for o in outcomes))
    assert _gauge(url, "asks_in_flight") == 0 and _gauge(url, "asks_waiting_for_generator") == 0


def test_a_disconnected_asker_stops_generating_within_a_second(crowd_site):
    url, tokens = crowd_site["url"], crowd_site["tokens"]
    with httpx.stream(
        "POST",
        f"{url}/api/ask/stream",
        json={"question": QUESTION, "collections": ["travel"]},
        headers=tokens["reader0"],
        timeout=300,
    ) as response:
        for line in response.iter_lines():
            if line.startswith("event: token"):
                break  # the model is writing
        assert _gauge(url, "asks_writing") == 1
    # The client has gone (the connection is closed).
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline and (_gauge(url, "asks_writing") or _gauge(url, "asks_in_flight")):
        time.sleep(0.1)
    assert _gauge(url, "asks_writing") == 0 and _gauge(url, "asks_in_flight") == 0


def test_one_asker_over_their_share_gets_429_with_retry_after(crowd_site):
    url, tokens, kb = crowd_site["url"], crowd_site["tokens"], crowd_site["kb"]
    with kb.admission.admit("reader1"), kb.admission.admit("reader1"):  # two of reader1's questions in progress
        refused = httpx.post(f"{url}/api/ask", json={"question": QUESTION, "collections": ["travel"]}, headers=tokens["reader1"])
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        other = httpx.post(
            f"{url}/api/ask", json={"question": QUESTION, "collections": ["travel"]}, headers=tokens["reader2"], timeout=300
        )
        assert other.status_code == 200
