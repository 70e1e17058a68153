"""The admin console's Collections tab: the collections the admin administers, and creating
one (with its text embedder), moving one to another embedder, renaming and deleting one."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import gradio as gr

from app.models import User
from app.service import KnowledgeBase
from ui.admin_format import COLLECTION_COLUMNS
from ui.admin_reindex import reindexing
from ui.admin_view import CollectionView, DashboardView, Said, said, show_keeping_message
from ui.i18n import I18N, Refusal


def create(kb: KnowledgeBase, user: User, _selected: str | None, name: str, embedder: str | None) -> tuple[Said, str]:
    collection = kb.create_collection(user, name or "", text_embedder=embedder or None)
    return said("admin_created", collection=collection.name), collection.name


def rename(kb: KnowledgeBase, user: User, selected: str | None, new_name: str) -> tuple[Said, str]:
    if not selected:
        raise Refusal("admin_choose_collection")
    collection = kb.rename_collection(user, selected, new_name)
    return said("admin_renamed", old=selected, new=collection.name), collection.name


def delete_collection(kb: KnowledgeBase, user: User, selected: str | None, confirmed: bool) -> tuple[Said, None]:
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


@dataclass(frozen=True, eq=False)
class CollectionsTab:
    kb: KnowledgeBase
    tab: gr.Tab
    table: gr.Dataframe
    new_name: gr.Textbox
    new_embedder: gr.Dropdown
    create_button: gr.Button
    embedder_choice: gr.Dropdown
    embedder_button: gr.Button
    rename_to: gr.Textbox
    rename_button: gr.Button
    confirm_delete: gr.Checkbox
    delete_button: gr.Button

    def wire(self, view: CollectionView, dashboard: DashboardView) -> None:
        collection = view.collection
        self.create_button.click(view.guarded(create), [collection, self.new_name, self.new_embedder], view.outputs).then(
            dashboard.show, None, dashboard.outputs
        )
        self.embedder_button.click(self.change_embedder, [collection, self.embedder_choice], [view.message]).then(
            view.guarded(show_keeping_message), [collection], view.outputs
        ).then(dashboard.show, None, dashboard.outputs)
        self.rename_button.click(view.guarded(rename), [collection, self.rename_to], view.outputs)
        self.delete_button.click(view.guarded(delete_collection), [collection, self.confirm_delete], view.outputs).then(
            dashboard.show, None, dashboard.outputs
        )

    def change_embedder(
        self, selected: str | None, embedder: str | None, request: gr.Request, progress=gr.Progress()
    ) -> Iterator[str]:
        """Move the collection to another text embedder: a re-index with it, swapped in whole."""
        yield from reindexing(self.kb, selected, embedder or "", request, progress)


def collections_tab(kb: KnowledgeBase, embedders: list[str]) -> CollectionsTab:
    """The tab, built inside the console's gr.Tabs; `embedders`: the text embedders to offer."""
    with gr.Tab(I18N("admin_tab_collections"), id="collections") as tab:
        table = gr.Dataframe(headers=COLLECTION_COLUMNS, interactive=False, elem_id="collections-table")
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
    return CollectionsTab(
        kb,
        tab,
        table,
        new_name,
        new_embedder,
        create_button,
        embedder_choice,
        embedder_button,
        rename_to,
        rename_button,
        confirm_delete,
        delete_button,
    )
