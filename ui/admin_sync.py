"""The admin console's Folder sync tab (app.folder_sync): register the server folder a
collection mirrors, run a sync now, and see the last one (when, what it changed, what failed
and why). The folder must lie under MMKB_SYNC_ROOTS; like the rest of the console this tab
only shows what `app.service.KnowledgeBase` allows, or why not.
"""

from __future__ import annotations

from collections.abc import Iterator

import gradio as gr

from app.folder_sync import SyncFolderInfo, SyncSummary
from app.service import AccessDenied, KnowledgeBase, NotFound
from ui.admin_common import BackgroundJob, _frame, _warning, _when, collection_tab
from ui.i18n import I18N, Refusal, language, t, value

FILE_COLUMNS = ["file", "change", "error"]


def summary_text(summary: SyncSummary, lang: str) -> str:
    text = t(
        "sync_summary",
        lang,
        added=len(summary.added),
        replaced=len(summary.replaced),
        deleted=len(summary.deleted),
        unchanged=summary.unchanged,
        failed=len(summary.failed),
    )
    text += t("sync_renamed", lang, renamed=len(summary.renamed)) if summary.renamed else ""
    return text + (t("sync_missing", lang, missing=len(summary.missing)) if summary.missing else "")


def status_text(info: SyncFolderInfo | None, lang: str) -> str:
    """The collection's folder and its last sync, in a sentence or two."""
    if info is None:
        return t("sync_none", lang)
    text = t("sync_registered_info", lang, path=info.path, user=info.created_by, when=_when(info.created_at))
    if info.last_summary is not None:
        text += t("sync_last", lang, when=_when(info.last_finished_at), summary=summary_text(info.last_summary, lang))
    elif not info.unfinished:
        text += t("sync_never", lang)
    if info.unfinished:
        text += t("sync_unfinished", lang, when=_when(info.last_started_at))
    return text


def file_rows(summary: SyncSummary | None, lang: str) -> list[list]:
    """The last sync's files that changed, failed or are gone, by kind."""
    if summary is None:
        return []
    rows = [
        [name, value(kind, lang, "change"), ""]
        for kind, names in (
            ("added", summary.added),
            ("replaced", summary.replaced),
            ("renamed", summary.renamed),
            ("deleted", summary.deleted),
            ("missing", summary.missing),
        )
        for name in names
    ]
    return rows + [[failure.file, value("failed", lang, "change"), failure.error] for failure in summary.failed]


def sync_tab(kb: KnowledgeBase, actor, collection: gr.Dropdown, refresh: gr.Button, lang_switch: gr.Radio) -> gr.Tab:
    """The tab, built inside the console's gr.Tabs; `actor(request)` is the console's user.
    It follows the console's collection choice, its refresh button and its language switch."""
    with gr.Tab(I18N("admin_tab_sync"), id="sync") as tab:
        gr.Markdown(I18N("sync_intro"))
        message = gr.Markdown(elem_id="sync-message")
        status = gr.Markdown(elem_id="sync-status")
        with gr.Row():
            folder = gr.Textbox(
                label=I18N("sync_folder_label"), placeholder="/srv/shares/handbooks", scale=4, elem_id="sync-folder"
            )
            register_button = gr.Button(I18N("sync_register"), scale=1, elem_id="sync-register")
        with gr.Row():
            delete = gr.Checkbox(label=I18N("sync_delete_label"), value=False, elem_id="sync-delete")
            run_button = gr.Button(I18N("sync_run"), variant="primary", elem_id="sync-run")
        files = gr.Dataframe(
            headers=FILE_COLUMNS, interactive=False, wrap=True, label=I18N("sync_files_label"), elem_id="sync-files"
        )
    outputs = [message, status, files]

    def render(user, selected: str | None, lang: str, said: str) -> tuple:
        if not selected:
            return said, "", _frame(FILE_COLUMNS, [], lang)
        info = kb.sync_folder_info(user, selected)
        return said, status_text(info, lang), _frame(FILE_COLUMNS, file_rows(info.last_summary if info else None, lang), lang)

    respond = collection_tab(tab, actor, render, collection, refresh, lang_switch, outputs)

    def register(selected: str | None, path: str | None, request: gr.Request):
        def action(user, lang: str) -> str:
            assert selected is not None  # respond runs an action only once a collection is chosen
            if path is None or not path.strip():
                raise Refusal("sync_enter_folder")
            info = kb.register_sync_folder(user, selected, path.strip())
            return t("sync_registered", lang, collection=selected, path=info.path)

        return respond(request, selected, action=action)

    def run(selected: str | None, delete_gone: bool, request: gr.Request, progress=gr.Progress()) -> Iterator[tuple]:
        lang = language(request)
        try:
            user = actor(request)
            if not selected:
                raise Refusal("admin_choose_collection")
        except (AccessDenied, NotFound, ValueError) as exc:
            yield (_warning(exc, lang), gr.update(), gr.update())
            return
        job = BackgroundJob(
            "admin-sync", lambda report: kb.sync_folder(user, selected, delete=bool(delete_gone), progress=report)
        )
        progress(0, desc=t("admin_starting", lang))
        for stage, done, total, current in job:
            progress(
                (done, total) if total else None,
                desc=current or t(f"sync_stage_{stage}", lang),
                unit=t("admin_progress_unit", lang),
            )
            yield (
                t("sync_running", lang, collection=selected, stage=t(f"sync_stage_{stage}", lang), done=done, total=total),
                gr.update(),
                gr.update(),
            )
        if job.error is not None:
            yield respond(request, selected, lang, action=lambda *_: _warning(job.error, lang))
            return
        assert job.result is not None  # the job ended without an error: it returned its summary
        summary: SyncSummary = job.result
        yield respond(
            request,
            selected,
            lang,
            action=lambda *_: t("sync_done", lang, collection=selected, summary=summary_text(summary, lang)),
        )

    register_button.click(register, [collection, folder], outputs)
    run_button.click(run, [collection, delete], outputs)
    return tab
