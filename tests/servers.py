"""Real servers and a real browser for the tests: uvicorn on loopback, Debian's Chromium."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from app import registry
from tests.conftest import ROOT, free_port, make_settings

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-output" / "screenshots"
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian chromium is not installed (scripts/setup.sh --with-test-services installs it)"
)


@contextmanager
def serving(app, start_timeout_s: float = 60, port: int | None = None) -> Iterator[str]:
    """Serve an ASGI app on a loopback port (a free one unless given: a test that must name
    the URL elsewhere first, such as an OIDC redirect URI) for the duration of the block;
    yields its base URL."""
    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.started, "the server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def chromium() -> Iterator:
    """Headless Debian Chromium driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()


KB = ROOT / ".venv" / "bin" / "kb"


def kb_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMKB_") and k != "DATABASE_URL"}
    # The packaged generator joined once under the repository's data/, not again per test directory.
    env.update(
        MMKB_DATA_DIR=str(data_dir), MMKB_GENERATOR_PATH=str(registry.resolve("generator", make_settings(ROOT / "data"))), **extra
    )
    return env


@contextmanager
def kb_serve(data_dir: Path, *args: str, log: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """`kb serve ARGS` until the block ends; yields its base URL on loopback once /healthz answers.
    env: more environment variables for the server (DATABASE_URL, say)."""
    with kb_server(data_dir, *args, log=log, env=env) as (url, _process):
        yield url


@contextmanager
def kb_server(data_dir: Path, *args: str, log: Path, env: dict[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """kb_serve, yielding the process too (a test that kills it)."""
    port = free_port()
    with log.open("w") as out:
        server = subprocess.Popen(
            [str(KB), "serve", "--port", str(port), *args],
            env=kb_env(data_dir, **(env or {})),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, f"kb serve exited with {server.returncode}:\n{log.read_text()}"
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"kb serve did not answer within 180 s:\n{log.read_text()}"
            time.sleep(0.5)
        yield url, server
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # its own session: the server and only what it started
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


def stop(process: subprocess.Popen, timeout_s: float = 10) -> None:
    """Terminate a server the test started; kill it if it has not ended within timeout_s."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def staged_documents(data: Path) -> list[Path]:
    """The documents a re-index has staged so far under the data directory (app.reindex)."""
    return sorted((data / "reindex").glob("*/doc-*.json"))


def kill_once_a_document_is_staged(process: subprocess.Popen, data: Path, log: Path, timeout_s: float = 600) -> None:
    """SIGKILL a process running a re-index as soon as it has staged its first document: the
    crash that leaves a job half done. Fails with the process's log if it dies first."""
    deadline = time.monotonic() + timeout_s
    while not staged_documents(data):
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"no document was staged in {timeout_s:.0f} s"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
