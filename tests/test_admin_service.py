"""Admin operations of KnowledgeBase: who sees which dashboard and jobs, zips through ingest."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from app.models import Role
from app.service import AccessDenied
from tests.conftest import SAMPLES


def test_dashboard_counts_what_each_admin_administers_only(kb, tmp_path):
    root = kb.system_user()
    for name in ("carol", "eve"):
        kb.accounts.create_user(name, None)
    kb.ingest(root, "plant", paths=[SAMPLES / "danger-high-voltage-sign.jpg"])
    note = tmp_path / "office.txt"
    note.write_text("The office closes at six on Fridays.")
    kb.ingest(root, "office", paths=[note])
    kb.manage_member(root, "plant", "carol", Role.admin)
    kb.manage_member(root, "office", "carol", Role.editor)

    everything = kb.dashboard(root)
    assert [c.name for c in everything.collections] == ["office", "plant"]
    plant = next(c for c in everything.collections if c.name == "plant")
    assert plant.documents == 1 and plant.figures == 1 and plant.index_bytes > 0
    assert {j.collection for j in everything.jobs} == {"office", "plant"}
    generator = next(m for m in everything.models if m.role == "generator")
    assert generator.name == kb.settings.generator and not (kb.settings.data_dir / "models").exists()  # never joined for a view

    carols = kb.dashboard(kb.user("carol"))
    assert [c.name for c in carols.collections] == ["plant"] and {j.collection for j in carols.jobs} == {"plant"}
    assert [c.name for c in kb.administered_collections(kb.user("carol"))] == ["plant"]
    # as an editor of office carol sees its jobs too, but not its members
    assert {j.collection for j in kb.jobs(kb.user("carol"))} == {"office", "plant"}
    with pytest.raises(AccessDenied):
        kb.members(kb.user("carol"), "office")
    with pytest.raises(AccessDenied):
        kb.dashboard(kb.user("eve"))
    with pytest.raises(AccessDenied):
        kb.jobs(kb.user("eve"))


def test_a_zip_ingests_each_entry_under_its_own_name_inside_the_data_directory(kb, tmp_path):
    bundle = tmp_path / "bundle.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("../../escaped-note.txt", "Pump P-7 is lubricated every Monday.")
        archive.writestr("nested/checklist.md", "# Checklist\n- close valve V-3 before draining")
    report = kb.ingest(kb.system_user(), "zips", paths=[bundle])
    assert [(f.filename, f.outcome.value) for f in report.files] == [
        ("escaped-note.txt", "ingested"),
        ("checklist.md", "ingested"),
    ]
    stored = [Path(d.stored_path) for d in kb.documents(kb.system_user(), "zips")]
    assert all(kb.settings.files_dir.resolve() in p.resolve().parents for p in stored)
    assert not (tmp_path.parent / "escaped-note.txt").exists()
    assert not list(kb.settings.data_dir.glob("unzip-*"))  # staging is cleaned up
    hits = kb.search(kb.system_user(), "When is pump P-7 lubricated?", ["zips"])
    assert hits[0].filename == "escaped-note.txt"


def test_an_archive_over_the_file_limit_fails_alone(kb, tmp_path):
    kb.settings.zip_max_files = 2
    bundle = tmp_path / "many.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        for number in range(3):
            archive.writestr(f"n{number}.txt", f"note {number}")
    loose = tmp_path / "loose.txt"
    loose.write_text("A loose note next to the archive.")
    report = kb.ingest(kb.system_user(), "limits", paths=[bundle, loose])
    assert [(f.filename, f.outcome.value) for f in report.files] == [("many.zip", "failed"), ("loose.txt", "ingested")]
    assert "MMKB_ZIP_MAX_FILES" in report.files[0].error
