"""Gradio admin console (mounted at /admin). It talks only to `app.service.KnowledgeBase`,
which decides every permission; this module only shows what the service allows or says why not.

Who may act: global administrators, and a collection's administrators for that collection.
Everyone else sees a "not allowed" notice and no controls.
"""

from __future__ import annotations

import csv
import queue
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from app.ingestion import Upload
from app.models import User
from app.schemas import Dashboard, FileOutcome, IngestReport, ReindexReport
from app.service import AccessDenied, KnowledgeBase, NotFound
from ingest.loaders import safe_filename

COLLECTION_COLUMNS = ["collection", "documents", "ready", "failed", "chunks"]
MEMBER_COLUMNS = ["user", "role"]
DOCUMENT_COLUMNS = ["id", "file", "status", "pages", "size (KB)", "error", "updated"]
STATUS_COLUMNS = ["file", "status", "pages", "chunks", "figures", "error"]
DASHBOARD_COLUMNS = ["collection", "documents", "ready", "failed", "chunks", "figures", "index on disk"]
JOB_COLUMNS = ["job", "collection", "kind", "status", "files", "failed", "message", "started", "finished"]
MODEL_COLUMNS = ["role", "model", "package", "loaded"]
ROLES = ["reader", "editor", "admin"]
OUTCOME_LABELS = {FileOutcome.ingested: "ready", FileOutcome.skipped_duplicate: "unchanged", FileOutcome.failed: "failed"}

NOT_ALLOWED = (
    "### Not allowed\n"
    "You are signed in as **{user}**, who administers no collection. The admin console is for "
    "global administrators and for a collection's administrators. Ask an administrator for the "
    "admin role on a collection, or use the [chat](../) to ask questions."
)


@dataclass
class FileRow:
    file: str
    status: str
    pages: int | None = None
    chunks: int | None = None
    figures: int | None = None
    error: str = ""

    def cells(self) -> list:
        return [self.file, self.status, self.pages if self.pages is not None else "",
                self.chunks if self.chunks is not None else "", self.figures if self.figures is not None else "", self.error]


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


def _frame(columns: list[str], rows: list[list]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


def _size(n_bytes: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1024 or unit == "GB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    return ""


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _warning(exc: Exception) -> str:
    return f"⚠️ {exc}"


def dashboard_views(board: Dashboard) -> tuple[str, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    totals = (
        f"**{board.documents}** documents · **{board.chunks}** chunks · **{board.figures}** figures · "
        f"indexes **{_size(board.index_bytes)}** on disk · **{len(board.collections)}** collections"
    )
    collections = _frame(
        DASHBOARD_COLUMNS,
        [[c.name, c.documents, c.ready_documents, c.failed_documents, c.chunks, c.figures, _size(c.index_bytes)] for c in board.collections],
    )
    jobs = _frame(
        JOB_COLUMNS,
        [[j.id, j.collection or "", j.kind, j.status, f"{j.done_files}/{j.total_files}", j.failed_files, j.message or "",
          _when(j.created_at), _when(j.finished_at)] for j in board.jobs],
    )
    models = _frame(MODEL_COLUMNS, [[m.role, m.name, m.package, "yes" if m.loaded else "not yet"] for m in board.models])
    return totals, collections, jobs, models


class BackgroundJob:
    """Runs `job(progress)` in a worker thread so the console can update while it works.
    Iterating yields the job's (done, total, current) progress events until it ends; then
    `result` or `error` holds the outcome."""

    def __init__(self, name: str, job) -> None:
        self.result = None
        self.error: Exception | None = None
        self._events: queue.Queue = queue.Queue()
        threading.Thread(target=self._run, args=(job,), name=name, daemon=True).start()

    def _run(self, job) -> None:
        try:
            self.result = job(lambda *event: self._events.put(event))
        except Exception as exc:  # shown by the caller; the console stays usable
            self.error = exc
        finally:
            self._events.put(None)

    def __iter__(self) -> Iterator[tuple]:
        while (event := self._events.get()) is not None:
            yield event


def build_admin(kb: KnowledgeBase) -> gr.Blocks:
    def actor(request: gr.Request | None) -> User:
        """The logged-in user (same accounts as the chat); the local operator before any account has a password."""
        if not kb.login_required():
            return kb.system_user()
        username = getattr(request, "username", None)
        if not username:
            raise AccessDenied("please log in")
        return kb.user(username)

    def collection_names(user: User) -> list[str]:
        return [c.name for c in kb.administered_collections(user)]

    def members_frame(user: User, collection: str | None) -> pd.DataFrame:
        if not collection:
            return _frame(MEMBER_COLUMNS, [])
        return _frame(MEMBER_COLUMNS, [[m.username, m.role] for m in kb.members(user, collection)])

    def documents_view(user: User, collection: str | None) -> tuple[pd.DataFrame, dict]:
        if not collection:
            return _frame(DOCUMENT_COLUMNS, []), gr.update(choices=[], value=None)
        documents = kb.documents(user, collection)
        rows = [
            [d.id, d.filename, d.status.value, d.page_count or "", round(d.size_bytes / 1024, 1), d.error or "", _when(d.updated_at)]
            for d in documents
        ]
        choices = [(f"{d.id} · {d.filename}", d.id) for d in documents]
        return _frame(DOCUMENT_COLUMNS, rows), gr.update(choices=choices, value=None)

    def view(user: User, selected: str | None, message: str | None) -> tuple:
        """Every output that depends on the selected collection, in VIEW order."""
        names = collection_names(user)
        selected = selected if selected in names else (names[0] if names else None)
        infos = {i.name: i for i in kb.collection_info(user)}
        collections = _frame(
            COLLECTION_COLUMNS,
            [[n, infos[n].documents, infos[n].ready_documents, infos[n].failed_documents, infos[n].chunks] for n in names if n in infos],
        )
        documents, document_choices = documents_view(user, selected)
        shown = gr.update() if message is None else message
        return (shown, gr.update(choices=names, value=selected), collections, members_frame(user, selected), documents, document_choices)

    def guarded(handler):
        """Run `handler(user, selected, *values)` for the current user and show the result;
        a refusal or bad input becomes the message. Gradio passes gr.Request only to a
        parameter annotated with it, hence one explicit signature per arity."""

        def call(values: list, request: gr.Request | None) -> tuple:
            try:
                user = actor(request)
            except (AccessDenied, NotFound) as exc:
                return (_warning(exc),) + tuple(gr.update() for _ in range(len(VIEW) - 1))
            selected = values[0]
            try:
                message, selected = handler(user, *values)
            except (AccessDenied, NotFound, ValueError) as exc:
                message = _warning(exc)
            return view(user, selected, message)

        arity = handler.__code__.co_argcount - 1
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

    def create(user: User, _selected: str | None, name: str):
        collection = kb.create_collection(user, name or "")
        return f"Created collection **{collection.name}**.", collection.name

    def rename(user: User, selected: str | None, new_name: str):
        if not selected:
            raise ValueError("choose a collection first")
        collection = kb.rename_collection(user, selected, new_name)
        return f"Renamed **{selected}** to **{collection.name}**.", collection.name

    def delete_collection(user: User, selected: str | None, confirmed: bool):
        if not selected:
            raise ValueError("choose a collection first")
        if not confirmed:
            raise ValueError(f"tick the box to confirm that {selected} and all its documents should be deleted")
        removed = kb.delete_collection(user, selected)
        return (
            f"Deleted collection **{selected}**: {len(removed.document_ids)} documents, {removed.chunks} chunks, "
            f"{len(removed.files_deleted)} stored files.",
            None,
        )

    # --- members -------------------------------------------------------------------

    def set_member(user: User, selected: str | None, username: str, role: str):
        if not selected:
            raise ValueError("choose a collection first")
        username = (username or "").strip()
        if not username:
            raise ValueError("enter a user name")
        kb.manage_member(user, selected, username, role)
        return f"**{username}** is now {role} of **{selected}**.", selected

    def remove_member(user: User, selected: str | None, username: str, _role: str):
        if not selected:
            raise ValueError("choose a collection first")
        username = (username or "").strip()
        if not username:
            raise ValueError("enter a user name")
        kb.manage_member(user, selected, username, None)
        return f"**{username}** is no longer a member of **{selected}**.", selected

    # --- documents -----------------------------------------------------------------

    def delete_document(user: User, selected: str | None, document_id):
        if not selected:
            raise ValueError("choose a collection first")
        if document_id is None:
            raise ValueError("choose a document to delete")
        removed = kb.delete_document(user, selected, int(document_id))
        return f"Deleted document {document_id} ({removed.chunks} chunks).", selected

    def failed_documents_report(selected: str | None, request: gr.Request):
        try:
            user = actor(request)
            if not selected:
                raise ValueError("choose a collection first")
            failed = [d for d in kb.documents(user, selected) if d.status.value == "failed"]
        except (AccessDenied, NotFound, ValueError) as exc:
            return _warning(exc), gr.update(value=None, visible=False)
        if not failed:
            return f"No failed documents in **{selected}**.", gr.update(value=None, visible=False)
        path = write_csv(f"failed-documents-{safe_filename(selected)}.csv", ["id", "file", "error", "updated"],
                         [[d.id, d.filename, d.error or "", _when(d.updated_at)] for d in failed])
        return f"{len(failed)} failed documents in **{selected}**.", gr.update(value=path, visible=True)

    # --- upload --------------------------------------------------------------------

    def ingest_files(selected: str | None, files: list[str] | None, request: gr.Request, progress=gr.Progress()) -> Iterator[tuple]:
        """Ingest in a worker thread so the status table can change while files are processed."""
        nothing = gr.update(value=None, visible=False)
        try:
            user = actor(request)
            if not selected:
                raise ValueError("choose or create a collection first")
            if not files:
                raise ValueError("add files to upload first (drag them onto the upload box)")
        except (AccessDenied, NotFound, ValueError) as exc:
            yield _warning(exc), gr.update(), nothing
            return
        uploads = [Upload(Path(f), Path(f).name) for f in files]
        job = BackgroundJob("admin-ingest", lambda report_progress: kb.ingest(user, selected, uploads=uploads, progress=report_progress))
        rows: list[FileRow] = []
        progress(0, desc="Starting…")
        for done, total, current in job:
            for row in rows[:done]:
                if row.status == "processing":
                    _fill_from_documents(kb, user, selected, row)
            if current and done < total:
                rows.append(FileRow(file=safe_filename(current), status="processing"))
            progress((done, total), desc=f"{current or 'finishing'}", unit="files")
            yield f"Ingesting into **{selected}**: {done} of {total} files done…", _frame(STATUS_COLUMNS, [r.cells() for r in rows]), nothing
        if job.error is not None:
            yield _warning(job.error), _frame(STATUS_COLUMNS, [r.cells() for r in rows]), nothing
            return
        report: IngestReport = job.result
        rows = report_rows(report)
        path = write_csv(f"ingest-report-job-{report.job_id}.csv", STATUS_COLUMNS, [r.cells() for r in rows])
        summary = (
            f"Job {report.job_id} finished in **{selected}**: {len(report.ingested)} ready, "
            f"{len(report.skipped)} unchanged, {len(report.failed)} failed."
        )
        if report.failed:
            summary += " The errors are in the table and in the report below."
        yield summary, _frame(STATUS_COLUMNS, [r.cells() for r in rows]), gr.update(value=path, visible=True)

    # --- dashboard -----------------------------------------------------------------

    def reindex_collection(selected: str | None, request: gr.Request, progress=gr.Progress()) -> Iterator[str]:
        """Rebuild the collection's chunks and vectors from its stored files (after a model or
        chunk-setting change). The old index keeps answering until the job swaps at the end."""
        try:
            user = actor(request)
            if not selected:
                raise ValueError("choose a collection first")
        except (AccessDenied, NotFound, ValueError) as exc:
            yield _warning(exc)
            return
        job = BackgroundJob("admin-reindex", lambda report_progress: kb.reindex(user, selected, progress=report_progress))
        progress(0, desc="Starting…")
        for done, total, current in job:
            progress((done, total), desc=f"{current or 'swapping in the new index'}", unit="documents")
            yield f"Re-indexing **{selected}**: {done} of {total} documents done…"
        if job.error is not None:
            yield _warning(job.error)
            return
        report: ReindexReport = job.result
        failed = "; ".join(f"{d.filename}: {d.error}" for d in report.failed)
        yield (
            f"Re-indexed **{selected}**: {len(report.rebuilt)} rebuilt, {len(report.resumed)} resumed from an "
            f"interrupted run, {len(report.failed)} failed" + (f" (kept their previous chunks: {failed})" if failed else "") + "."
        )

    def dashboard(request: gr.Request):
        try:
            return dashboard_views(kb.dashboard(actor(request)))
        except (AccessDenied, NotFound) as exc:
            return _warning(exc), gr.update(), gr.update(), gr.update()

    def load(request: gr.Request):
        try:
            user = actor(request)
        except (AccessDenied, NotFound) as exc:
            return (_warning(exc), gr.update(visible=False)) + tuple(gr.update() for _ in VIEW)
        if not user.is_admin and not kb.administered_collections(user):
            return (NOT_ALLOWED.format(user=user.username), gr.update(visible=False)) + tuple(gr.update() for _ in VIEW)
        role = "global administrator" if user.is_admin else "collection administrator"
        return (f"Signed in as **{user.username}** ({role}).", gr.update(visible=True)) + view(user, None, "")

    with gr.Blocks(title="mmkb — admin console") as demo:
        gr.Markdown("## mmkb admin console\nCollections, members, uploads and what the knowledge base holds. [Open the chat](../)")
        notice = gr.Markdown(elem_id="admin-notice")
        with gr.Column(visible=False, elem_id="admin-console") as console:
            with gr.Row():
                collection = gr.Dropdown(label="Collection", choices=[], scale=3, elem_id="admin-collection")
                refresh = gr.Button("Refresh", scale=1, elem_id="admin-refresh")
            message = gr.Markdown(elem_id="admin-message")
            with gr.Tabs():
                with gr.Tab("Collections", id="collections"):
                    collections_table = gr.Dataframe(headers=COLLECTION_COLUMNS, interactive=False, elem_id="collections-table")
                    with gr.Row():
                        new_name = gr.Textbox(label="New collection", placeholder="name", scale=3, elem_id="new-collection")
                        create_button = gr.Button("Create", variant="primary", scale=1, elem_id="create-collection")
                    with gr.Row():
                        rename_to = gr.Textbox(label="Rename the selected collection to", scale=3, elem_id="rename-to")
                        rename_button = gr.Button("Rename", scale=1, elem_id="rename-collection")
                    with gr.Row():
                        confirm_delete = gr.Checkbox(label="Delete the selected collection with all its documents", elem_id="confirm-delete")
                        delete_button = gr.Button("Delete collection", variant="stop", elem_id="delete-collection")
                with gr.Tab("Members", id="members"):
                    members_table = gr.Dataframe(headers=MEMBER_COLUMNS, interactive=False, elem_id="members-table")
                    with gr.Row():
                        member_name = gr.Textbox(label="User name", scale=3, elem_id="member-name")
                        member_role = gr.Dropdown(label="Role", choices=ROLES, value="reader", scale=1, elem_id="member-role")
                    with gr.Row():
                        set_member_button = gr.Button("Add or change role", variant="primary", elem_id="set-member")
                        remove_member_button = gr.Button("Remove member", elem_id="remove-member")
                with gr.Tab("Upload", id="upload"):
                    files = gr.File(
                        label="Files (drag and drop; PDF, images, DOCX, PPTX, HTML, Markdown, text, or a .zip of them)",
                        file_count="multiple", type="filepath", elem_id="upload-files",
                    )
                    ingest_button = gr.Button("Ingest into the selected collection", variant="primary", elem_id="ingest")
                    status_table = gr.Dataframe(
                        headers=STATUS_COLUMNS, interactive=False, wrap=True, elem_id="ingest-status",
                        column_widths=["24%", "9%", "7%", "7%", "7%", "46%"],
                    )
                    ingest_report = gr.File(label="Ingest report (CSV, with each failed file's error)", visible=False, elem_id="ingest-report")
                with gr.Tab("Documents", id="documents"):
                    documents_table = gr.Dataframe(headers=DOCUMENT_COLUMNS, interactive=False, wrap=True, elem_id="documents-table")
                    with gr.Row():
                        document_choice = gr.Dropdown(label="Document", choices=[], scale=3, elem_id="document-choice")
                        delete_document_button = gr.Button("Delete document", variant="stop", scale=1, elem_id="delete-document")
                    failed_button = gr.Button("Download the errors of failed documents", elem_id="failed-report-button")
                    failed_report = gr.File(label="Failed documents (CSV)", visible=False, elem_id="failed-report")
                with gr.Tab("Dashboard", id="dashboard") as dashboard_tab:
                    totals = gr.Markdown(elem_id="dashboard-totals")
                    dashboard_collections = gr.Dataframe(headers=DASHBOARD_COLUMNS, interactive=False, label="Collections")
                    jobs_table = gr.Dataframe(headers=JOB_COLUMNS, interactive=False, wrap=True, label="Last jobs", elem_id="jobs-table")
                    models_table = gr.Dataframe(headers=MODEL_COLUMNS, interactive=False, label="Models in use")
                    dashboard_refresh = gr.Button("Refresh dashboard", elem_id="dashboard-refresh")
                    reindex_button = gr.Button("Re-index the selected collection", elem_id="reindex")
                    reindex_status = gr.Markdown(elem_id="reindex-status")

        VIEW = [message, collection, collections_table, members_table, documents_table, document_choice]
        DASHBOARD = [totals, dashboard_collections, jobs_table, models_table]

        demo.load(load, None, [notice, console, *VIEW])
        demo.load(dashboard, None, DASHBOARD)
        reindex_button.click(reindex_collection, [collection], [reindex_status]).then(dashboard, None, DASHBOARD)
        collection.input(guarded(show), [collection], VIEW)
        refresh.click(guarded(show), [collection], VIEW)
        create_button.click(guarded(create), [collection, new_name], VIEW).then(dashboard, None, DASHBOARD)
        rename_button.click(guarded(rename), [collection, rename_to], VIEW)
        delete_button.click(guarded(delete_collection), [collection, confirm_delete], VIEW).then(dashboard, None, DASHBOARD)
        set_member_button.click(guarded(set_member), [collection, member_name, member_role], VIEW)
        remove_member_button.click(guarded(remove_member), [collection, member_name, member_role], VIEW)
        delete_document_button.click(guarded(delete_document), [collection, document_choice], VIEW).then(dashboard, None, DASHBOARD)
        failed_button.click(failed_documents_report, [collection], [message, failed_report])
        ingest_button.click(ingest_files, [collection, files], [message, status_table, ingest_report]).then(
            guarded(show_keeping_message), [collection], VIEW
        ).then(dashboard, None, DASHBOARD)
        dashboard_refresh.click(dashboard, None, DASHBOARD)
        dashboard_tab.select(dashboard, None, DASHBOARD)
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
