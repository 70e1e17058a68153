"""The admin console's Upload tab: files (or archives) added to the selected collection,
ingested in a worker thread while a status table shows each file as it is processed, then
a CSV report of the batch."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from app.ingestion import Upload
from app.models import User
from app.schemas import FileOutcome, IngestReport
from app.service import AccessDenied, KnowledgeBase, NotFound
from ingest.loaders import safe_filename
from ui.admin_common import BackgroundJob, _frame, _warning, write_csv
from ui.admin_view import CollectionView, DashboardView, show_keeping_message, signed_in
from ui.i18n import I18N, Refusal, language, t, value

STATUS_COLUMNS = ["file", "status", "pages", "chunks", "figures", "error"]
OUTCOME_LABELS = {FileOutcome.ingested: "ready", FileOutcome.skipped_duplicate: "unchanged", FileOutcome.failed: "failed"}


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


@dataclass(frozen=True, eq=False)
class UploadTab:
    kb: KnowledgeBase
    tab: gr.Tab
    files: gr.File
    ingest_button: gr.Button
    status: gr.Dataframe
    report: gr.File

    def wire(self, view: CollectionView, dashboard: DashboardView) -> None:
        self.ingest_button.click(self.ingest_files, [view.collection, self.files], [view.message, self.status, self.report]).then(
            view.guarded(show_keeping_message), [view.collection], view.outputs
        ).then(dashboard.show, None, dashboard.outputs)

    def ingest_files(
        self, selected: str | None, files: list[str] | None, request: gr.Request, progress=gr.Progress()
    ) -> Iterator[tuple]:
        """Ingest in a worker thread so the status table can change while files are processed."""
        nothing = gr.update(value=None, visible=False)
        lang = language(request)
        try:
            user = signed_in(self.kb, request)
            if not selected:
                raise Refusal("admin_choose_or_create")
            if not files:
                raise Refusal("admin_add_files")
        except (AccessDenied, NotFound, ValueError) as exc:
            yield _warning(exc, lang), gr.update(), nothing
            return
        uploads = [Upload(Path(f), Path(f).name) for f in files]
        job = BackgroundJob(
            "admin-ingest", lambda report_progress: self.kb.ingest(user, selected, uploads=uploads, progress=report_progress)
        )
        rows: list[FileRow] = []
        progress(0, desc=t("admin_starting", lang))
        for done, total, current in job:
            for row in rows[:done]:
                if row.status == "processing":
                    _fill_from_documents(self.kb, user, selected, row)
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


def upload_tab(kb: KnowledgeBase) -> UploadTab:
    """The tab, built inside the console's gr.Tabs."""
    with gr.Tab(I18N("admin_tab_upload"), id="upload") as tab:
        files = gr.File(
            label=I18N("admin_files"),
            file_count="multiple",
            type="filepath",
            elem_id="upload-files",
        )
        ingest_button = gr.Button(I18N("admin_ingest"), variant="primary", elem_id="ingest")
        status = gr.Dataframe(
            headers=STATUS_COLUMNS,
            interactive=False,
            wrap=True,
            elem_id="ingest-status",
            column_widths=["24%", "9%", "7%", "7%", "7%", "46%"],
        )
        report = gr.File(label=I18N("admin_ingest_report"), visible=False, elem_id="ingest-report")
    return UploadTab(kb, tab, files, ingest_button, status, report)
