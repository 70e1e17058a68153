"""A real PostgreSQL server for the tests: Debian's postgresql, started on loopback."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import free_port

PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
needs_postgres = pytest.mark.skipif(
    not PG_BIN, reason="Debian postgresql is not installed (scripts/setup.sh --with-test-services installs it)"
)


def _as_postgres(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; CI runs as root.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def running_postgres() -> Iterator[str]:
    """A PostgreSQL server of its own on a loopback port for the block; yields its SQLAlchemy URL."""
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
