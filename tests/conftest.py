"""Shared fixtures: real models loaded once per test session, fresh data directories per test."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from app import registry  # noqa: F401 - hub libraries offline before any model import
from app.model_set import ModelSet
from app.service import KnowledgeBase
from app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples" / "collection"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_settings(data_dir: Path, **overrides) -> Settings:
    return Settings(data_dir=data_dir, database_url=None, **overrides)


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> ModelSet:
    return ModelSet(make_settings(tmp_path_factory.mktemp("models")))


@pytest.fixture()
def kb(tmp_path, models) -> KnowledgeBase:
    knowledge_base = KnowledgeBase(make_settings(tmp_path / "data"), models=models)
    yield knowledge_base
    knowledge_base.close()


@pytest.fixture(scope="session")
def sample_kb(tmp_path_factory, models) -> KnowledgeBase:
    """The bundled sample collection, ingested once for every test that only reads it."""
    knowledge_base = KnowledgeBase(make_settings(tmp_path_factory.mktemp("samples-data")), models=models)
    report = knowledge_base.ingest(knowledge_base.system_user(), "samples", paths=[SAMPLES])
    assert not report.failed, report.failed
    yield knowledge_base
    knowledge_base.close()


@pytest.fixture()
def local_ray():
    """A local Ray (2 CPUs) whose workers import mmkb from this checkout, for Ray Data paths."""
    import ray

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}},
    )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def sample_questions() -> list[dict]:
    return json.loads((ROOT / "samples" / "questions.json").read_text())


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium (tests.servers.chromium), one per test module."""
    from tests.servers import chromium

    with chromium() as launched:
        yield launched


def pytest_collection_modifyitems(config, items):
    """The fast tier (`pytest -m "not slow"`) is every test that loads no real model: a test
    that takes the shared `models` fixture, or whose module says `pytestmark = pytest.mark.slow`
    (it loads them itself), is slow."""
    for item in items:
        if "models" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
