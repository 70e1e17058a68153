"""Re-indexing from the console: the dashboard's re-index button with its force box, and the
Collections tab's change of text embedder (a re-index with the other embedder). Either
rebuilds the collection's chunks and vectors from its stored files in a worker thread while
the old index keeps answering, then reports what was rebuilt and what the collection's
evaluation set said of the new index (app.reindex's guard)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import gradio as gr

from app.schemas import ReindexReport
from app.service import AccessDenied, KnowledgeBase, NotFound
from ui.admin_common import BackgroundJob, _warning
from ui.admin_eval import guard_summary
from ui.admin_view import DashboardView, signed_in
from ui.i18n import I18N, Refusal, language, t


def reindexing(
    kb: KnowledgeBase,
    selected: str | None,
    embedder: str | None,
    request: gr.Request,
    progress,
    force: bool = False,
) -> Iterator[str]:
    """Re-index `selected` (with `embedder` when given; "" when the admin chose none), showing
    progress, then the report in a sentence or two."""
    lang = language(request)
    try:
        user = signed_in(kb, request)
        if not selected:
            raise Refusal("admin_choose_collection")
        if embedder == "":
            raise Refusal("admin_choose_embedder")
    except (AccessDenied, NotFound, ValueError) as exc:
        yield _warning(exc, lang)
        return
    job = BackgroundJob(
        "admin-reindex",
        lambda report_progress: kb.reindex(user, selected, progress=report_progress, text_embedder=embedder, force=force),
    )
    progress(0, desc=t("admin_starting", lang))
    for done, total, current in job:
        progress((done, total), desc=f"{current or t('admin_swapping', lang)}", unit="documents")
        yield t("admin_reindexing", lang, collection=selected, done=done, total=total)
    if job.error is not None:
        yield _warning(job.error, lang)
        return
    assert job.result is not None  # the job ended without an error: it returned its report
    yield report_text(job.result, selected, embedder, lang)


def report_text(report: ReindexReport, collection: str, embedder: str | None, lang: str) -> str:
    failed = "; ".join(f"{d.filename}: {d.error}" for d in report.failed)
    moved = ""
    if embedder is not None and not report.held:  # held: the guard's sentence below says the live index stayed
        moved = t(
            "admin_embedder_kept" if report.failed else "admin_embedder_changed", lang, collection=collection, embedder=embedder
        )
    return (
        t(
            "admin_reindexed",
            lang,
            collection=collection,
            rebuilt=len(report.rebuilt),
            resumed=len(report.resumed),
            failed=len(report.failed),
        )
        + (t("admin_reindex_kept", lang, failures=failed) if failed and embedder is None else "")
        + moved
        + ("。" if lang == "zh-CN" else ".")
        # The collection's evaluation set on the live and the new index, and what was done.
        + "".join(guard_summary(guarded, lang) for guarded in report.guard)
    )


@dataclass(frozen=True, eq=False)
class ReindexPanel:
    kb: KnowledgeBase
    button: gr.Button
    force: gr.Checkbox
    status: gr.Markdown

    def wire(self, collection: gr.Dropdown, dashboard: DashboardView) -> None:
        self.button.click(self.reindex_collection, [collection, self.force], [self.status]).then(
            dashboard.show, None, dashboard.outputs
        )

    def reindex_collection(self, selected: str | None, force: bool, request: gr.Request, progress=gr.Progress()) -> Iterator[str]:
        """Rebuild the collection's chunks and vectors from its stored files (after a model or
        chunk-setting change). The old index keeps answering until the job swaps at the end.
        force: swap in even where the collection's evaluation set does worse on the new index
        (`kb reindex --force`): a held re-index is then swapped in without rebuilding."""
        yield from reindexing(self.kb, selected, None, request, progress, force)


def reindex_panel(kb: KnowledgeBase) -> ReindexPanel:
    """The re-index button, its force box and its status line, in the tab being built."""
    button = gr.Button(I18N("admin_reindex"), elem_id="reindex")
    force = gr.Checkbox(label=I18N("admin_reindex_force"), value=False, elem_id="reindex-force")
    status = gr.Markdown(elem_id="reindex-status")
    return ReindexPanel(kb, button, force, status)
