"""Several replicas, one truth: two real `kb serve` processes and the CLI on one PostgreSQL
and one data directory. What one of them changes (an upload, a delete, a permission, a CLI
ingest) is seen by the other's next request within 5 seconds, without a restart; the same
files ingested through both at once end as one copy each, with the saved index equal to SQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select

from app.models import Chunk, Collection, Document, DocumentStatus
from retrieval.vector_store import VectorStore
from tests.conftest import ROOT
from tests.postgres import needs_postgres, running_postgres
from tests.servers import KB, kb_env, kb_server

pytestmark = [needs_postgres, pytest.mark.slow]

PROPAGATION_S = 5.0
NO_HYDE = {"MMKB_HYDE": "false"}  # retrieval alone: these tests ask where a passage is, not for prose


@dataclass
class Cluster:
    data: Path
    database_url: str
    a: str  # base URLs of the two replicas
    b: str
    b_process: subprocess.Popen
    alice: dict[str, str]  # bearer headers: alice administers everything, bob is granted per test
    bob: dict[str, str]

    def env(self, **extra: str) -> dict[str, str]:
        return kb_env(self.data, DATABASE_URL=self.database_url, **NO_HYDE, **extra)

    def cli(self, *args: str, **extra_env: str) -> subprocess.CompletedProcess:
        done = subprocess.run([str(KB), *args], env=self.env(**extra_env), cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return done


def _token(url: str, username: str, password: str) -> dict[str, str]:
    response = httpx.post(f"{url}/api/tokens", json={"username": username, "password": password}, timeout=60)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def _note(folder: Path, name: str, sentence: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f"# {name}\n\n{sentence}\n", encoding="utf-8")
    return path


def _upload(url: str, headers: dict[str, str], collection: str, *paths: Path) -> dict:
    files = [("files", (p.name, p.read_bytes(), "text/markdown")) for p in paths]
    response = httpx.post(f"{url}/api/collections/{collection}/documents", files=files, headers=headers, timeout=600)
    assert response.status_code == 200, response.text
    return response.json()


def _search(url: str, headers: dict[str, str], question: str, collection: str) -> httpx.Response:
    return httpx.post(
        f"{url}/api/search",
        json={"question": question, "collections": [collection], "limit": 5, "hyde": False},
        headers=headers,
        timeout=120,
    )


def _found_files(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [source["filename"] for source in response.json()]


def _within(seconds: float, check: Callable[[], bool]) -> float:
    """Ask `check` until it holds; returns when, after the start, the request that saw it was
    sent. Fails if no request sent within `seconds` saw it."""
    start = time.monotonic()
    while True:
        sent = time.monotonic() - start
        if check():
            return sent
        assert sent < seconds, f"not seen within {seconds} s"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("replicas")
    data = root / "data"
    with ExitStack() as stack:
        url = stack.enter_context(running_postgres())
        env = {"DATABASE_URL": url, **NO_HYDE}
        for name, admin in (("alice", "--admin"), ("bob", "--no-admin")):
            created = subprocess.run(
                [str(KB), "admin", "create", name, admin],
                env=kb_env(data, MMKB_NEW_PASSWORD=f"{name}-password", **env),
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert created.returncode == 0, created.stderr[-3000:]
        a, _ = stack.enter_context(kb_server(data, log=root / "a.log", env=env))
        b, b_process = stack.enter_context(kb_server(data, log=root / "b.log", env=env))
        cluster = Cluster(data, url, a, b, b_process, _token(a, "alice", "alice-password"), _token(b, "bob", "bob-password"))
        # Something to search, and both replicas' models loaded, before any clock starts.
        _upload(a, cluster.alice, "shared", _note(root / "seed", "seed.md", "The canteen opens at eight in the morning."))
        for replica in (a, b):
            assert _found_files(_search(replica, cluster.alice, "When does the canteen open?", "shared")) == ["seed.md"]
        yield cluster


def test_a_file_uploaded_through_one_replica_is_found_through_the_other_within_5_s(cluster, tmp_path):
    note = _note(tmp_path, "valves.md", "The zephyrine relief valve is torqued to 47 newton metres.")
    report = _upload(cluster.a, cluster.alice, "shared", note)
    assert [f["outcome"] for f in report["files"]] == ["ingested"]
    _within(
        PROPAGATION_S, lambda: "valves.md" in _found_files(_search(cluster.b, cluster.alice, "zephyrine valve torque", "shared"))
    )


def test_a_delete_through_one_replica_disappears_from_the_other_within_5_s(cluster, tmp_path):
    note = _note(tmp_path, "pumps.md", "The quillfeather pump must be primed with glycol before start-up.")
    document_id = _upload(cluster.b, cluster.alice, "shared", note)["files"][0]["document_id"]
    _within(
        PROPAGATION_S,
        lambda: "pumps.md" in _found_files(_search(cluster.a, cluster.alice, "quillfeather pump priming", "shared")),
    )

    deleted = httpx.delete(f"{cluster.a}/api/collections/shared/documents/{document_id}", headers=cluster.alice, timeout=60)
    assert deleted.status_code == 200, deleted.text
    _within(
        PROPAGATION_S,
        lambda: "pumps.md" not in _found_files(_search(cluster.b, cluster.alice, "quillfeather pump priming", "shared")),
    )
    listed = httpx.get(f"{cluster.b}/api/collections/shared/documents", headers=cluster.alice, timeout=60)
    assert "pumps.md" not in [d["filename"] for d in listed.json()]


def test_a_revoked_permission_takes_effect_on_the_other_replicas_next_request(cluster):
    def set_role(role: str | None) -> None:
        changed = httpx.put(
            f"{cluster.a}/api/collections/shared/members",
            json={"username": "bob", "role": role},
            headers=cluster.alice,
            timeout=60,
        )
        assert changed.status_code == 200, changed.text

    set_role("reader")
    assert "seed.md" in _found_files(_search(cluster.b, cluster.bob, "When does the canteen open?", "shared"))
    set_role(None)
    refused = _search(cluster.b, cluster.bob, "When does the canteen open?", "shared")
    assert refused.status_code == 404, refused.text  # a collection bob may not read is one he cannot see
    assert "canteen" not in refused.text


def test_a_cli_ingest_beside_the_live_servers_is_found_by_both(cluster, tmp_path):
    note = _note(tmp_path, "boilers.md", "The marrowind boiler is descaled every ninety days.")
    cluster.cli("ingest", str(note), "--collection", "shared")
    for replica in (cluster.a, cluster.b):
        _within(
            PROPAGATION_S,
            lambda replica=replica: (
                "boilers.md" in _found_files(_search(replica, cluster.alice, "marrowind boiler descaling", "shared"))
            ),
        )


def test_a_cli_reindex_reaches_the_live_replicas_new_chunks_within_5_s(cluster, tmp_path):
    _upload(cluster.a, cluster.alice, "rebuilt", _note(tmp_path, "ovens.md", "The tallowick oven is cleaned every Friday."))
    before = _search(cluster.b, cluster.alice, "tallowick oven cleaning", "rebuilt").json()[0]["chunk_id"]
    cluster.cli("reindex", "--collection", "rebuilt")
    # The re-index replaced every chunk row: a replica still searching its old vectors would
    # find ids that no longer exist (and so nothing); one that caught up finds the new chunk.
    _within(
        PROPAGATION_S,
        lambda: (
            [s["chunk_id"] for s in _search(cluster.b, cluster.alice, "tallowick oven cleaning", "rebuilt").json()][:1]
            not in ([], [before])
        ),
    )
    assert _found_files(_search(cluster.a, cluster.alice, "tallowick oven cleaning", "rebuilt"))[0] == "ovens.md"


def test_the_same_files_ingested_at_once_through_two_replicas_and_the_cli_end_as_one_copy_each(cluster, tmp_path):
    notes = [
        _note(tmp_path, f"policy-{i}.md", f"Policy {i}: the {word} form is filed within {i + 2} days.")
        for i, word in enumerate(["amber", "birch", "cobalt", "dune", "ember", "fjord"])
    ]
    results: dict[str, object] = {}

    def through(name: str, ingest: Callable[[], object]) -> threading.Thread:
        def run() -> None:
            try:
                results[name] = ingest()
            except BaseException as exc:  # reported below, with the other writers' outcomes
                results[name] = exc

        return threading.Thread(target=run)

    writers = [
        through("a", lambda: _upload(cluster.a, cluster.alice, "race", *notes)),
        through("b", lambda: _upload(cluster.b, cluster.alice, "race", *reversed(notes))),
        through("cli", lambda: cluster.cli("ingest", *map(str, notes), "--collection", "race")),
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=600)
    assert not [r for r in results.values() if isinstance(r, BaseException)], results
    for name in ("a", "b"):
        report = results[name]
        assert isinstance(report, dict)
        # The writer that came second waited for the first and skipped the file: never a failure.
        assert {f["outcome"] for f in report["files"]} <= {"ingested", "skipped_duplicate"}, report

    engine = create_engine(cluster.database_url)
    try:
        with engine.connect() as connection:
            collection_id = connection.scalar(select(Collection.id).where(Collection.name == "race"))
            documents = connection.execute(
                select(Document.filename, Document.status).where(Document.collection_id == collection_id)
            ).all()
            ready_chunks = set(
                connection.scalars(
                    select(Chunk.id)
                    .join(Document, Document.id == Chunk.document_id)
                    .where(
                        Chunk.collection_id == collection_id,
                        Chunk.vector_space == "text",
                        Document.status == DocumentStatus.ready,
                    )
                )
            )
    finally:
        engine.dispose()
    assert sorted(filename for filename, _ in documents) == sorted(n.name for n in notes)
    assert {status for _, status in documents} == {DocumentStatus.ready}
    saved = VectorStore(cluster.data / "indexes" / f"collection-{collection_id}" / "text.faiss", dim=384)
    assert saved.ids() == ready_chunks
    for replica in (cluster.a, cluster.b):
        assert "policy-2.md" in _found_files(_search(replica, cluster.alice, "When is the cobalt form filed?", "race"))


def test_an_upload_survives_the_loss_of_the_replica_that_did_not_receive_it(cluster, tmp_path):
    notes = [_note(tmp_path, f"manual-{i}.md", f"Manual {i}: the gasket of unit {i} is replaced yearly.") for i in range(8)]
    upload = threading.Thread(target=lambda: results.append(_upload(cluster.a, cluster.alice, "shared", *notes)))
    results: list[dict] = []
    upload.start()
    time.sleep(0.5)
    os.killpg(cluster.b_process.pid, signal.SIGKILL)  # replica b dies mid-upload, without any cleanup
    cluster.b_process.wait(timeout=30)
    upload.join(timeout=600)
    assert results, "the upload to replica a did not return"
    assert sorted(f["outcome"] for f in results[0]["files"]) == ["ingested"] * 8
    assert "manual-5.md" in _found_files(_search(cluster.a, cluster.alice, "gasket of unit 5", "shared"))
