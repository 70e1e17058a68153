"""Gradio admin console (mounted at /admin). It talks only to `app.service.KnowledgeBase`,
which decides every permission; this module only shows what the service allows or says why not.

Who may act: global administrators, and a collection's administrators for that collection.
Everyone else sees a "not allowed" notice and no controls.
"""

from __future__ import annotations

import csv
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from app import registry
from app.ingestion import Upload
from app.models import Role, User
from app.schemas import Dashboard, FileOutcome, IngestReport, ReindexReport
from app.service import AccessDenied, KnowledgeBase, NotFound
from ingest.loaders import safe_filename
from ui.admin_common import ROLES, BackgroundJob, _frame, _size, _warning, _when
from ui.admin_directory import directory_panel
from ui.admin_eval import evaluation_tab, guard_summary
from ui.admin_sync import sync_tab
from ui.i18n import I18N, SWITCH_SCRIPT, Refusal, language, switch, t, value

COLLECTION_COLUMNS = ["collection", "documents", "ready", "failed", "chunks", "embedder"]
MEMBER_COLUMNS = ["user", "role"]
DOCUMENT_COLUMNS = ["id", "file", "status", "pages", "size (KB)", "error", "updated"]
STATUS_COLUMNS = ["file", "status", "pages", "chunks", "figures", "error"]
DASHBOARD_COLUMNS = ["collection", "embedder", "documents", "ready", "failed", "chunks", "figures", "index on disk"]
JOB_COLUMNS = ["job", "collection", "kind", "status", "files", "failed", "message", "started", "finished"]
MODEL_COLUMNS = ["role", "model", "package", "loaded"]
TAB_KEYS = ["collections", "members", "upload", "documents", "dashboard", "evaluation", "sync"]  # in the console's order
OUTCOME_LABELS = {FileOutcome.ingested: "ready", FileOutcome.skipped_duplicate: "unchanged", FileOutcome.failed: "failed"}

NOT_ALLOWED = t("admin_not_allowed")  # English; each language's is in ui.i18n


def page_options() -> dict:
    """Page-level options (the language switch's script, translations) for `mount_gradio_app()`."""
    return {"head": SWITCH_SCRIPT, "i18n": I18N}


@dataclass(frozen=True)
class Said:
    """A handler's message as a key and its values, written out in the page's language;
    a value given as (kind, word) is a stored word shown translated (a role)."""

    key: str
    params: dict

    def text(self, lang: str) -> str:
        return t(self.key, lang, **{k: value(v[1], lang, v[0]) if isinstance(v, tuple) else v for k, v in self.params.items()})


def said(key: str, **params) -> Said:
    return Said(key, params)


@dataclass
class FileRow:
    file: str
    status: str
    pages: int | None = None
    chunks: int | None = None
    figures: int | None = None
    error: str = ""

    def cells(self, lang: str = "en") -> list:
        return [
            self.file,
            value(self.status, lang),
            self.pages if self.pages is not None else "",
            self.chunks if self.chunks is not None else "",
            self.figures if self.figures is not None else "",
            self.error,
        ]


def report_rows(report: IngestReport) -> list[FileRow]:
    return [
        FileRow(
            file=f.filename,
            status=OUTCOME_LABELS[f.outcome],
            pages=f.pages,
            chunks=f.text_chunks if f.outcome == FileOutcome.ingested else None,
            figures=f.image_chunks if f.outcome == FileOutcome.ingested else None,
            error=f.error or "",
        )
        for f in report.files
    ]


def write_csv(name: str, columns: list[str], rows: list[list]) -> str:
    """A CSV in a fresh temporary folder, for a download (Gradio serves files from the temp dir)."""
    path = Path(tempfile.mkdtemp(prefix="mmkb-report-")) / name
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)
    return str(path)


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


def build_admin(kb: KnowledgeBase) -> gr.Blocks:
    def actor(request: gr.Request | None) -> User:
        """The logged-in user (same accounts as the chat); the local operator before any account has a password."""
        if not kb.login_required():
            return kb.system_user()
        username = getattr(request, "username", None)
        if not username:
            refused = AccessDenied(t("admin_please_log_in"))
            refused.i18n_key, refused.i18n_params = "admin_please_log_in", {}  # shown in the page's language
            raise refused
        return kb.user(username)

    def collection_names(user: User) -> list[str]:
        return [c.name for c in kb.administered_collections(user)]

    def members_frame(user: User, collection: str | None, lang: str) -> pd.DataFrame:
        if not collection:
            return _frame(MEMBER_COLUMNS, [], lang)
        return _frame(MEMBER_COLUMNS, [[m.username, value(m.role, lang, "role")] for m in kb.members(user, collection)], lang)

    def documents_view(user: User, collection: str | None, lang: str) -> tuple[pd.DataFrame, dict]:
        if not collection:
            return _frame(DOCUMENT_COLUMNS, [], lang), gr.update(choices=[], value=None)
        documents = kb.documents(user, collection)
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
        choices = [(f"{d.id} · {d.filename}", d.id) for d in documents]
        return _frame(DOCUMENT_COLUMNS, rows, lang), gr.update(choices=choices, value=None)

    def view(user: User, selected: str | None, message: str | None, lang: str = "en") -> tuple:
        """Every output that depends on the selected collection, in VIEW order."""
        names = collection_names(user)
        selected = selected if selected in names else (names[0] if names else None)
        infos = {i.name: i for i in kb.collection_info(user)}
        collections = _frame(
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
        documents, document_choices = documents_view(user, selected, lang)
        shown = gr.update() if message is None else message
        return (
            shown,
            gr.update(choices=names, value=selected),
            collections,
            members_frame(user, selected, lang),
            documents,
            document_choices,
        )

    def guarded(handler: Any) -> Callable[..., Any]:
        """Run `handler(user, selected, *values)` for the current user and show the result;
        a refusal or bad input becomes the message. Gradio passes gr.Request only to a
        parameter annotated with it, hence one explicit signature per arity."""

        def call(values: list, request: gr.Request | None) -> tuple:
            lang = language(request)
            try:
                user = actor(request)
            except (AccessDenied, NotFound) as exc:
                return (_warning(exc, lang),) + tuple(gr.update() for _ in range(len(VIEW) - 1))
            selected = values[0]
            try:
                message, selected = handler(user, *values)
            except (AccessDenied, NotFound, ValueError) as exc:
                message = _warning(exc, lang)
            # A handler's message is a key and its values, so that it reads in the page's language.
            return view(user, selected, message.text(lang) if isinstance(message, Said) else message, lang)

        arity = handler.__code__.co_argcount - 1
        run: Callable[..., Any]  # one of the signatures below
        if arity == 1:

            def run(selected, request: gr.Request):
                return call([selected], request)
        elif arity == 2:

            def run(selected, value, request: gr.Request):
                return call([selected, value], request)
        else:

            def run(selected, value, other, request: gr.Request):
                return call([selected, value, other], request)

        return run

    def show(user: User, selected: str | None):
        return "", selected

    def show_keeping_message(user: User, selected: str | None):
        return None, selected

    # --- collections ---------------------------------------------------------------

    def create(user: User, _selected: str | None, name: str, embedder: str | None):
        collection = kb.create_collection(user, name or "", text_embedder=embedder or None)
        return said("admin_created", collection=collection.name), collection.name

    def rename(user: User, selected: str | None, new_name: str):
        if not selected:
            raise Refusal("admin_choose_collection")
        collection = kb.rename_collection(user, selected, new_name)
        return said("admin_renamed", old=selected, new=collection.name), collection.name

    def delete_collection(user: User, selected: str | None, confirmed: bool):
        if not selected:
            raise Refusal("admin_choose_collection")
        if not confirmed:
            raise Refusal("admin_confirm_delete", collection=selected)
        removed = kb.delete_collection(user, selected)
        return (
            said(
                "admin_deleted_collection",
                collection=selected,
                documents=len(removed.document_ids),
                chunks=removed.chunks,
                files=len(removed.files_deleted),
            ),
            None,
        )

    # --- members -------------------------------------------------------------------

    def set_member(user: User, selected: str | None, username: str, role: str | None):
        if not selected:
            raise Refusal("admin_choose_collection")
        username = (username or "").strip()
        if not username:
            raise Refusal("admin_enter_user")
        # The dropdown gives one of ROLES, or None once cleared (passed on as before).
        kb.manage_member(user, selected, username, Role(role) if role is not None else None)
        return said("admin_member_set", user=username, role=("role", role), collection=selected), selected

    def remove_member(user: User, selected: str | None, username: str, _role: str):
        if not selected:
            raise Refusal("admin_choose_collection")
        username = (username or "").strip()
        if not username:
            raise Refusal("admin_enter_user")
        kb.manage_member(user, selected, username, None)
        return said("admin_member_removed", user=username, collection=selected), selected

    # --- documents -----------------------------------------------------------------

    def delete_document(user: User, selected: str | None, document_id):
        if not selected:
            raise Refusal("admin_choose_collection")
        if document_id is None:
            raise Refusal("admin_choose_document")
        removed = kb.delete_document(user, selected, int(document_id))
        return said("admin_deleted_document", document=document_id, chunks=removed.chunks), selected

    def failed_documents_report(selected: str | None, request: gr.Request):
        lang = language(request)
        try:
            user = actor(request)
            if not selected:
                raise Refusal("admin_choose_collection")
            failed = [d for d in kb.documents(user, selected) if d.status.value == "failed"]
        except (AccessDenied, NotFound, ValueError) as exc:
            return _warning(exc, lang), gr.update(value=None, visible=False)
        if not failed:
            return t("admin_no_failed", lang, collection=selected), gr.update(value=None, visible=False)
        path = write_csv(
            f"failed-documents-{safe_filename(selected)}.csv",
            ["id", "file", "error", "updated"],
            [[d.id, d.filename, d.error or "", _when(d.updated_at)] for d in failed],
        )
        return t("admin_failed_count", lang, count=len(failed), collection=selected), gr.update(value=path, visible=True)

    # --- upload --------------------------------------------------------------------

    def ingest_files(
        selected: str | None, files: list[str] | None, request: gr.Request, progress=gr.Progress()
    ) -> Iterator[tuple]:
        """Ingest in a worker thread so the status table can change while files are processed."""
        nothing = gr.update(value=None, visible=False)
        lang = language(request)
        try:
            user = actor(request)
            if not selected:
                raise Refusal("admin_choose_or_create")
            if not files:
                raise Refusal("admin_add_files")
        except (AccessDenied, NotFound, ValueError) as exc:
            yield _warning(exc, lang), gr.update(), nothing
            return
        uploads = [Upload(Path(f), Path(f).name) for f in files]
        job = BackgroundJob(
            "admin-ingest", lambda report_progress: kb.ingest(user, selected, uploads=uploads, progress=report_progress)
        )
        rows: list[FileRow] = []
        progress(0, desc=t("admin_starting", lang))
        for done, total, current in job:
            for row in rows[:done]:
                if row.status == "processing":
                    _fill_from_documents(kb, user, selected, row)
            if current and done < total:
                rows.append(FileRow(file=safe_filename(current), status="processing"))
            progress((done, total), desc=f"{current or t('admin_finishing', lang)}", unit=t("admin_progress_unit", lang))
            yield (
                t("admin_ingesting", lang, collection=selected, done=done, total=total),
                _frame(STATUS_COLUMNS, [r.cells(lang) for r in rows], lang),
                nothing,
            )
        if job.error is not None:
            yield _warning(job.error, lang), _frame(STATUS_COLUMNS, [r.cells(lang) for r in rows], lang), nothing
            return
        assert job.result is not None  # the job ended without an error: it returned its report
        report: IngestReport = job.result
        rows = report_rows(report)
        path = write_csv(f"ingest-report-job-{report.job_id}.csv", STATUS_COLUMNS, [r.cells() for r in rows])
        summary = t(
            "admin_job_done",
            lang,
            job=report.job_id,
            collection=selected,
            ready=len(report.ingested),
            unchanged=len(report.skipped),
            failed=len(report.failed),
        )
        if report.failed:
            summary += t("admin_job_errors", lang)
        yield summary, _frame(STATUS_COLUMNS, [r.cells(lang) for r in rows], lang), gr.update(value=path, visible=True)

    # --- dashboard -----------------------------------------------------------------

    def reindex_collection(selected: str | None, force: bool, request: gr.Request, progress=gr.Progress()) -> Iterator[str]:
        """Rebuild the collection's chunks and vectors from its stored files (after a model or
        chunk-setting change). The old index keeps answering until the job swaps at the end.
        force: swap in even where the collection's evaluation set does worse on the new index
        (`kb reindex --force`): a held re-index is then swapped in without rebuilding."""
        yield from reindexing(selected, None, request, progress, force)

    def change_embedder(selected: str | None, embedder: str | None, request: gr.Request, progress=gr.Progress()) -> Iterator[str]:
        """Move the collection to another text embedder: a re-index with it, swapped in whole."""
        yield from reindexing(selected, embedder or "", request, progress)

    def reindexing(
        selected: str | None, embedder: str | None, request: gr.Request, progress, force: bool = False
    ) -> Iterator[str]:
        lang = language(request)
        try:
            user = actor(request)
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
        report: ReindexReport = job.result
        failed = "; ".join(f"{d.filename}: {d.error}" for d in report.failed)
        moved = ""
        if embedder is not None and not report.held:  # held: the guard's sentence below says the live index stayed
            moved = t(
                "admin_embedder_kept" if report.failed else "admin_embedder_changed", lang, collection=selected, embedder=embedder
            )
        yield (
            t(
                "admin_reindexed",
                lang,
                collection=selected,
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

    def dashboard(request: gr.Request, lang: str | None = None):
        lang = lang or language(request)
        try:
            return dashboard_views(kb.dashboard(actor(request)), lang)
        except (AccessDenied, NotFound) as exc:
            return _warning(exc, lang), gr.update(), gr.update(), gr.update()

    def load(request: gr.Request, lang: str | None = None):
        """The console in the page's language (`lang` when the switch just changed it: its
        cookie may not be set yet)."""
        lang = lang or language(request)
        language_roles = gr.update(choices=[(value(r, lang, "role"), r) for r in ROLES])  # the value stays English
        empty_status = _frame(STATUS_COLUMNS, [], lang)
        try:
            user = actor(request)
        except (AccessDenied, NotFound) as exc:
            return (
                (_warning(exc, lang), gr.update(visible=False))
                + tuple(gr.update() for _ in VIEW)
                + (lang, language_roles, empty_status)
            )
        if not user.is_admin and not kb.administered_collections(user):
            return (
                (t("admin_not_allowed", lang, user=user.username), gr.update(visible=False))
                + tuple(gr.update() for _ in VIEW)
                + (lang, language_roles, empty_status)
            )
        role = t("admin_global_admin" if user.is_admin else "admin_collection_admin", lang)
        return (
            (t("admin_signed_in", lang, user=user.username, role=role), gr.update(visible=True))
            + view(user, None, "", lang)
            + (lang, language_roles, empty_status)
        )

    def tab_titles(request: gr.Request, lang: str | None = None) -> tuple:
        """Every tab's title from the server: Gradio's changeLocale re-renders only the selected
        tab's, and a title sent while the console is still hidden does not reach its tab bar
        (hence a step after `load`, once the console shows)."""
        lang = lang or language(request)
        return tuple(gr.update(label=t(f"admin_tab_{tab}", lang)) for tab in TAB_KEYS)

    def change_language(lang: str, collection_name: str | None, request: gr.Request):
        # Everything the server wrote is written again in the new language; the chosen collection stays.
        shown = list(load(request, lang))
        if shown[1].get("visible"):
            user = actor(request)
            shown[2 : 2 + len(VIEW)] = view(user, collection_name, None, lang)
        return tuple(shown) + tab_titles(request, lang) + dashboard(request, lang)

    # The packaged text embedders, and the default even when it is an admin's own model.
    embedders = sorted({*registry.choices("text_embedder"), kb.settings.text_embedder})
    with gr.Blocks(title="mmkb — admin console") as demo:
        with gr.Row(equal_height=True):
            gr.Markdown(I18N("admin_intro"))
            lang_switch = switch()
        notice = gr.Markdown(elem_id="admin-notice")
        with gr.Column(visible=False, elem_id="admin-console") as console:
            with gr.Row():
                collection = gr.Dropdown(label=I18N("chat_collection"), choices=[], scale=3, elem_id="admin-collection")
                refresh = gr.Button(I18N("admin_refresh"), scale=1, elem_id="admin-refresh")
            message = gr.Markdown(elem_id="admin-message")
            with gr.Tabs():
                with gr.Tab(I18N("admin_tab_collections"), id="collections") as collections_tab:
                    collections_table = gr.Dataframe(headers=COLLECTION_COLUMNS, interactive=False, elem_id="collections-table")
                    with gr.Row():
                        new_name = gr.Textbox(
                            label=I18N("admin_new_collection"),
                            placeholder=I18N("admin_name_placeholder"),
                            scale=3,
                            elem_id="new-collection",
                        )
                        # Left empty: the collection follows MMKB_TEXT_EMBEDDER, as `kb collections create` without --embedder.
                        new_embedder = gr.Dropdown(
                            label=I18N("admin_embedder"),
                            choices=embedders,
                            value=None,
                            scale=2,
                            elem_id="new-collection-embedder",
                        )
                        create_button = gr.Button(I18N("admin_create"), variant="primary", scale=1, elem_id="create-collection")
                    with gr.Row():
                        embedder_choice = gr.Dropdown(
                            label=I18N("admin_change_embedder_to"),
                            choices=embedders,
                            value=None,
                            scale=3,
                            elem_id="collection-embedder",
                        )
                        embedder_button = gr.Button(I18N("admin_change_embedder"), scale=1, elem_id="change-embedder")
                    with gr.Row():
                        rename_to = gr.Textbox(label=I18N("admin_rename_to"), scale=3, elem_id="rename-to")
                        rename_button = gr.Button(I18N("admin_rename"), scale=1, elem_id="rename-collection")
                    with gr.Row():
                        confirm_delete = gr.Checkbox(label=I18N("admin_delete_confirm_label"), elem_id="confirm-delete")
                        delete_button = gr.Button(I18N("admin_delete_collection"), variant="stop", elem_id="delete-collection")
                with gr.Tab(I18N("admin_tab_members"), id="members") as members_tab:
                    members_table = gr.Dataframe(headers=MEMBER_COLUMNS, interactive=False, elem_id="members-table")
                    with gr.Row():
                        member_name = gr.Textbox(label=I18N("admin_user_name"), scale=3, elem_id="member-name")
                        member_role = gr.Dropdown(
                            label=I18N("admin_role"), choices=ROLES, value="reader", scale=1, elem_id="member-role"
                        )
                    with gr.Row():
                        set_member_button = gr.Button(I18N("admin_set_member"), variant="primary", elem_id="set-member")
                        remove_member_button = gr.Button(I18N("admin_remove_member"), elem_id="remove-member")
                    # Beside the members: a group's mapping gives its directory users a membership at sign-in.
                    directory_panel(kb, actor, demo, members_tab, collection, refresh, lang_switch)
                with gr.Tab(I18N("admin_tab_upload"), id="upload") as upload_tab:
                    files = gr.File(
                        label=I18N("admin_files"),
                        file_count="multiple",
                        type="filepath",
                        elem_id="upload-files",
                    )
                    ingest_button = gr.Button(I18N("admin_ingest"), variant="primary", elem_id="ingest")
                    status_table = gr.Dataframe(
                        headers=STATUS_COLUMNS,
                        interactive=False,
                        wrap=True,
                        elem_id="ingest-status",
                        column_widths=["24%", "9%", "7%", "7%", "7%", "46%"],
                    )
                    ingest_report = gr.File(label=I18N("admin_ingest_report"), visible=False, elem_id="ingest-report")
                with gr.Tab(I18N("admin_tab_documents"), id="documents") as documents_tab:
                    documents_table = gr.Dataframe(
                        headers=DOCUMENT_COLUMNS, interactive=False, wrap=True, elem_id="documents-table"
                    )
                    with gr.Row():
                        document_choice = gr.Dropdown(
                            label=I18N("admin_document"), choices=[], scale=3, elem_id="document-choice"
                        )
                        delete_document_button = gr.Button(
                            I18N("admin_delete_document"), variant="stop", scale=1, elem_id="delete-document"
                        )
                    failed_button = gr.Button(I18N("admin_failed_button"), elem_id="failed-report-button")
                    failed_report = gr.File(label=I18N("admin_failed_report"), visible=False, elem_id="failed-report")
                with gr.Tab(I18N("admin_tab_dashboard"), id="dashboard") as dashboard_tab:
                    totals = gr.Markdown(elem_id="dashboard-totals")
                    dashboard_collections = gr.Dataframe(
                        headers=DASHBOARD_COLUMNS,
                        interactive=False,
                        label=I18N("admin_tab_collections"),
                        elem_id="dashboard-collections",
                    )
                    jobs_table = gr.Dataframe(
                        headers=JOB_COLUMNS, interactive=False, wrap=True, label=I18N("admin_last_jobs"), elem_id="jobs-table"
                    )
                    models_table = gr.Dataframe(
                        headers=MODEL_COLUMNS, interactive=False, label=I18N("admin_models"), elem_id="models-table"
                    )
                    dashboard_refresh = gr.Button(I18N("admin_refresh_dashboard"), elem_id="dashboard-refresh")
                    reindex_button = gr.Button(I18N("admin_reindex"), elem_id="reindex")
                    reindex_force = gr.Checkbox(label=I18N("admin_reindex_force"), value=False, elem_id="reindex-force")
                    reindex_status = gr.Markdown(elem_id="reindex-status")
                evaluation = evaluation_tab(kb, actor, collection, refresh, lang_switch)
                folder_sync = sync_tab(kb, actor, collection, refresh, lang_switch)

        VIEW = [message, collection, collections_table, members_table, documents_table, document_choice]
        TABS = [collections_tab, members_tab, upload_tab, documents_tab, dashboard_tab, evaluation, folder_sync]
        DASHBOARD = [totals, dashboard_collections, jobs_table, models_table]

        demo.load(load, None, [notice, console, *VIEW, lang_switch, member_role, status_table]).then(tab_titles, None, TABS)
        lang_switch.input(
            change_language,
            [lang_switch, collection],
            [notice, console, *VIEW, lang_switch, member_role, status_table, *TABS, *DASHBOARD],
        )
        demo.load(dashboard, None, DASHBOARD)
        reindex_button.click(reindex_collection, [collection, reindex_force], [reindex_status]).then(dashboard, None, DASHBOARD)
        collection.input(guarded(show), [collection], VIEW)
        refresh.click(guarded(show), [collection], VIEW)
        create_button.click(guarded(create), [collection, new_name, new_embedder], VIEW).then(dashboard, None, DASHBOARD)
        embedder_button.click(change_embedder, [collection, embedder_choice], [message]).then(
            guarded(show_keeping_message), [collection], VIEW
        ).then(dashboard, None, DASHBOARD)
        rename_button.click(guarded(rename), [collection, rename_to], VIEW)
        delete_button.click(guarded(delete_collection), [collection, confirm_delete], VIEW).then(dashboard, None, DASHBOARD)
        set_member_button.click(guarded(set_member), [collection, member_name, member_role], VIEW)
        remove_member_button.click(guarded(remove_member), [collection, member_name, member_role], VIEW)
        delete_document_button.click(guarded(delete_document), [collection, document_choice], VIEW).then(
            dashboard, None, DASHBOARD
        )
        failed_button.click(failed_documents_report, [collection], [message, failed_report])
        ingest_button.click(ingest_files, [collection, files], [message, status_table, ingest_report]).then(
            guarded(show_keeping_message), [collection], VIEW
        ).then(dashboard, None, DASHBOARD)
        dashboard_refresh.click(dashboard, None, DASHBOARD)
        dashboard_tab.select(dashboard, None, DASHBOARD)
    demo.i18n_instance = I18N  # mount_gradio_app(i18n=...) would set it; this works without it too
    return demo


def _fill_from_documents(kb: KnowledgeBase, user: User, collection: str, row: FileRow) -> None:
    """A finished file's status while the batch goes on, read back from its document row."""
    try:
        matches = [d for d in kb.documents(user, collection) if d.filename == row.file]
    except (AccessDenied, NotFound):
        return
    if not matches:
        row.status = "failed"  # no row at all: refused before a document was recorded
        return
    document = max(matches, key=lambda d: d.updated_at)
    row.status = document.status.value
    row.pages = document.page_count
    row.error = document.error or ""
