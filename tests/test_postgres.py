"""The same app on a real PostgreSQL server (Debian's postgresql, started by the test on loopback)."""

from __future__ import annotations

import pytest

from app.service import KnowledgeBase
from tests.conftest import SAMPLES, make_settings
from tests.postgres import needs_postgres, running_postgres

pytestmark = needs_postgres


@pytest.fixture(scope="module")
def postgres_url():
    with running_postgres() as url:
        yield url


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
