"""The same app on a real PostgreSQL server (Debian's postgresql, started by the test on loopback)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from app.service import KnowledgeBase
from tests.conftest import SAMPLES, free_port, make_settings

PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
pytestmark = pytest.mark.skipif(
    not PG_BIN, reason="Debian postgresql is not installed (scripts/setup.sh --with-test-services installs it)"
)


def _as_postgres(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; CI runs as root.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="module")
def postgres_url():
    bin_dir = Path(PG_BIN[-1])
    root = Path(tempfile.mkdtemp(prefix="mmkb-pg-"))
    data, sockets = root / "data", root / "run"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
        root.chmod(0o755)
    port = free_port()
    subprocess.run(
        _as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-U", "mmkb", "--auth=trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
    )
    subprocess.run(
        _as_postgres(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(root / "log"),
                "-w",
                "-o",
                f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        deadline = time.time() + 30
        while (
            subprocess.run([str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)], capture_output=True).returncode != 0
        ):
            assert time.time() < deadline, "postgres did not start"
            time.sleep(0.3)
        subprocess.run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "mmkb", "mmkb"], check=True)
        yield f"postgresql+psycopg://mmkb@127.0.0.1:{port}/mmkb"
    finally:
        subprocess.run(_as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_ingest_dedup_permissions_and_answers_work_on_postgresql(postgres_url, tmp_path, models):
    settings = make_settings(tmp_path / "data").model_copy(update={"database_url": postgres_url})
    kb = KnowledgeBase(settings, models=models)
    assert kb.database.engine.dialect.name == "postgresql"
    report = kb.ingest(
        kb.system_user(), "pg", paths=[SAMPLES / "solar-inverter-manual.pdf", SAMPLES / "danger-high-voltage-sign.jpg"]
    )
    assert [f.outcome.value for f in report.files] == ["ingested", "ingested"]
    again = kb.ingest(kb.system_user(), "pg", paths=[SAMPLES / "solar-inverter-manual.pdf"])
    assert again.files[0].outcome.value == "skipped_duplicate"
    reader = kb.accounts.create_user("reader", "reader-password")
    outsider = kb.accounts.create_user("outsider", "outsider-password")
    kb.grant("reader", "pg")
    assert [c.name for c in kb.readable_collections(reader)] == ["pg"]
    assert kb.readable_collections(outsider) == []
    answer = kb.ask(reader, "What is the part number of the replacement cooling fan for the SX-400?", ["pg"])
    assert ("solar-inverter-manual.pdf", 5) in {(s.filename, s.page) for s in answer.cited_sources}
    kb.close()
