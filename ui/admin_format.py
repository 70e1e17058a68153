"""How the admin console writes its tables: the collections, members and documents of the
selected collection, and the dashboard (totals, collections, recent jobs, models), each in the
viewer's language. Pure functions of the service's results (no Gradio events, no
KnowledgeBase calls), shared by the console's panels and the tests."""

from __future__ import annotations

import re

import pandas as pd

from app.models import Document
from app.schemas import CollectionInfo, Dashboard, MemberInfo
from ui.admin_common import _frame, _size, _when
from ui.i18n import t, value

COLLECTION_COLUMNS = ["collection", "documents", "ready", "failed", "chunks", "embedder"]
MEMBER_COLUMNS = ["user", "role"]
DOCUMENT_COLUMNS = ["id", "file", "status", "pages", "size (KB)", "error", "updated"]
DASHBOARD_COLUMNS = ["collection", "embedder", "documents", "ready", "failed", "chunks", "figures", "index on disk"]
JOB_COLUMNS = ["job", "collection", "kind", "status", "files", "failed", "message", "started", "finished"]
MODEL_COLUMNS = ["role", "model", "package", "loaded"]


def collections_frame(names: list[str], infos: dict[str, CollectionInfo], lang: str) -> pd.DataFrame:
    """The collections an admin administers (`names`, in the console's order), with their counts."""
    return _frame(
        COLLECTION_COLUMNS,
        [
            [
                n,
                infos[n].documents,
                infos[n].ready_documents,
                infos[n].failed_documents,
                infos[n].chunks,
                infos[n].text_embedder,
            ]
            for n in names
            if n in infos
        ],
        lang,
    )


def members_frame(members: list[MemberInfo], lang: str) -> pd.DataFrame:
    return _frame(MEMBER_COLUMNS, [[m.username, value(m.role, lang, "role")] for m in members], lang)


def documents_frame(documents: list[Document], lang: str) -> pd.DataFrame:
    rows = [
        [
            d.id,
            d.filename,
            value(d.status.value, lang),
            d.page_count or "",
            round(d.size_bytes / 1024, 1),
            d.error or "",
            _when(d.updated_at),
        ]
        for d in documents
    ]
    return _frame(DOCUMENT_COLUMNS, rows, lang)


def _package(package: str, lang: str) -> str:
    """app.dashboard's package column: a fixed phrase, or pins with "and N more parts"."""
    more = re.fullmatch(r"(.+) and (\d+) more parts", package)
    return t("package_more", lang, first=more.group(1), more=more.group(2)) if more else value(package, lang, "package")


_INGEST_SUMMARY = re.compile(r"(\d+) ingested, (\d+) unchanged, (\d+) failed")
_REINDEX_SUMMARY = re.compile(r"(\d+) re-indexed, (\d+) failed( \(kept their previous chunks\))?")


def _job_message(message: str | None, lang: str) -> str:
    """A job's message: its summary line (app.ingestion, app.reindex) in `lang`; anything
    else (a failed file's error, an interruption) is the service's own English words."""
    first, newline, rest = (message or "").partition("\n")
    if lang != "en":
        if found := _INGEST_SUMMARY.fullmatch(first):
            first = t("job_message_ingest", lang, ingested=found[1], unchanged=found[2], failed=found[3])
        elif found := _REINDEX_SUMMARY.fullmatch(first):
            first = t("job_message_reindex", lang, rebuilt=found[1], failed=found[2]) + (
                t("job_message_kept", lang) if found[3] else ""
            )
    return first + newline + rest


def dashboard_views(board: Dashboard, lang: str = "en") -> tuple[str, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    totals = t(
        "admin_totals",
        lang,
        documents=board.documents,
        chunks=board.chunks,
        figures=board.figures,
        size=_size(board.index_bytes),
        collections=len(board.collections),
    )
    collections = _frame(
        DASHBOARD_COLUMNS,
        # The embedder is a registry name: never translated.
        [
            [
                c.name,
                c.text_embedder,
                c.documents,
                c.ready_documents,
                c.failed_documents,
                c.chunks,
                c.figures,
                _size(c.index_bytes),
            ]
            for c in board.collections
        ],
        lang,
    )
    # A job's message is the service's own words, in English, but for its summary line.
    jobs = _frame(
        JOB_COLUMNS,
        [
            [
                j.id,
                j.collection or "",
                value(j.kind, lang, "job"),
                value(j.status, lang),
                f"{j.done_files}/{j.total_files}",
                j.failed_files,
                _job_message(j.message, lang),
                _when(j.created_at),
                _when(j.finished_at),
            ]
            for j in board.jobs
        ],
        lang,
    )
    models = _frame(
        MODEL_COLUMNS,
        [
            [
                value(m.role, lang, "model"),
                m.name,
                _package(m.package, lang),
                t("admin_yes" if m.loaded else "admin_not_yet", lang),
            ]
            for m in board.models
        ],
        lang,
    )
    return totals, collections, jobs, models
