"""The admin console's Documents tab: the selected collection's documents (the table and the
document choice are part of the collection view, ui.admin_view), deleting one, and a CSV of
the documents that failed to ingest, with their errors."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from app.models import User
from app.service import AccessDenied, KnowledgeBase, NotFound
from ingest.loaders import safe_filename
from ui.admin_common import _warning, _when, write_csv
from ui.admin_format import DOCUMENT_COLUMNS
from ui.admin_view import CollectionView, DashboardView, Said, said, signed_in
from ui.i18n import I18N, Refusal, language, t


def delete_document(kb: KnowledgeBase, user: User, selected: str | None, document_id) -> tuple[Said, str]:
    if not selected:
        raise Refusal("admin_choose_collection")
    if document_id is None:
        raise Refusal("admin_choose_document")
    removed = kb.delete_document(user, selected, int(document_id))
    return said("admin_deleted_document", document=document_id, chunks=removed.chunks), selected


@dataclass(frozen=True, eq=False)
class DocumentsTab:
    kb: KnowledgeBase
    tab: gr.Tab
    table: gr.Dataframe
    choice: gr.Dropdown
    delete_button: gr.Button
    failed_button: gr.Button
    failed_report: gr.File

    def wire(self, view: CollectionView, dashboard: DashboardView) -> None:
        self.delete_button.click(view.guarded(delete_document), [view.collection, self.choice], view.outputs).then(
            dashboard.show, None, dashboard.outputs
        )
        self.failed_button.click(self.failed_documents_report, [view.collection], [view.message, self.failed_report])

    def failed_documents_report(self, selected: str | None, request: gr.Request):
        lang = language(request)
        try:
            user = signed_in(self.kb, request)
            if not selected:
                raise Refusal("admin_choose_collection")
            failed = [d for d in self.kb.documents(user, selected) if d.status.value == "failed"]
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


def documents_tab(kb: KnowledgeBase) -> DocumentsTab:
    """The tab, built inside the console's gr.Tabs."""
    with gr.Tab(I18N("admin_tab_documents"), id="documents") as tab:
        table = gr.Dataframe(headers=DOCUMENT_COLUMNS, interactive=False, wrap=True, elem_id="documents-table")
        with gr.Row():
            choice = gr.Dropdown(label=I18N("admin_document"), choices=[], scale=3, elem_id="document-choice")
            delete_button = gr.Button(I18N("admin_delete_document"), variant="stop", scale=1, elem_id="delete-document")
        failed_button = gr.Button(I18N("admin_failed_button"), elem_id="failed-report-button")
        failed_report = gr.File(label=I18N("admin_failed_report"), visible=False, elem_id="failed-report")
    return DocumentsTab(kb, tab, table, choice, delete_button, failed_button, failed_report)
