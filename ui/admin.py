"""Gradio admin console (mounted at /admin). It talks only to `app.service.KnowledgeBase`,
which decides every permission; this module only shows what the service allows or says why not.

Who may act: global administrators, and a collection's administrators for that collection.
Everyone else sees a "not allowed" notice and no controls.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import gradio as gr

from app import registry
from app.service import AccessDenied, KnowledgeBase, NotFound
from ui.admin_collections import collections_tab
from ui.admin_common import ROLES, _frame, _warning
from ui.admin_dashboard import dashboard_tab
from ui.admin_documents import documents_tab
from ui.admin_eval import evaluation_tab
from ui.admin_members import members_tab
from ui.admin_sync import sync_tab
from ui.admin_upload import STATUS_COLUMNS, upload_tab
from ui.admin_view import CollectionView, DashboardView, signed_in
from ui.i18n import I18N, SWITCH_SCRIPT, language, switch, t, value

TAB_KEYS = ["collections", "members", "upload", "documents", "dashboard", "evaluation", "sync"]  # in the console's order

NOT_ALLOWED = t("admin_not_allowed")  # English; each language's is in ui.i18n


def page_options() -> dict:
    """Page-level options (the language switch's script, translations) for `mount_gradio_app()`."""
    return {"head": SWITCH_SCRIPT, "i18n": I18N}


@dataclass(frozen=True, eq=False)
class ConsolePage:
    """What the page's load and its language switch write: who is signed in (or why the
    console stays hidden), the console, the selected collection, the role names, the tab
    titles and the dashboard, in the page's language."""

    kb: KnowledgeBase
    notice: gr.Markdown
    console: gr.Column
    lang_switch: gr.Radio
    view: CollectionView
    member_role: gr.Dropdown
    upload_status: gr.Dataframe
    tabs: list[gr.Tab]
    dashboard: DashboardView

    def wire(self, demo: gr.Blocks) -> None:
        shown = [self.notice, self.console, *self.view.outputs, self.lang_switch, self.member_role, self.upload_status]
        demo.load(self.load, None, shown).then(self.tab_titles, None, self.tabs)
        self.lang_switch.input(
            self.change_language, [self.lang_switch, self.view.collection], [*shown, *self.tabs, *self.dashboard.outputs]
        )
        demo.load(self.dashboard.show, None, self.dashboard.outputs)

    def load(self, request: gr.Request, lang: str | None = None) -> tuple:
        """The console in the page's language (`lang` when the switch just changed it: its
        cookie may not be set yet)."""
        lang = lang or language(request)
        language_roles = gr.update(choices=[(value(r, lang, "role"), r) for r in ROLES])  # the value stays English
        rest = (lang, language_roles, _frame(STATUS_COLUMNS, [], lang))
        unchanged = tuple(gr.update() for _ in self.view.outputs)
        try:
            user = signed_in(self.kb, request)
        except (AccessDenied, NotFound) as exc:
            return (_warning(exc, lang), gr.update(visible=False)) + unchanged + rest
        if not user.is_admin and not self.kb.administered_collections(user):
            return (t("admin_not_allowed", lang, user=user.username), gr.update(visible=False)) + unchanged + rest
        role = t("admin_global_admin" if user.is_admin else "admin_collection_admin", lang)
        signed = t("admin_signed_in", lang, user=user.username, role=role)
        return (signed, gr.update(visible=True)) + self.view.render(user, None, "", lang) + rest

    def tab_titles(self, request: gr.Request, lang: str | None = None) -> tuple:
        """Every tab's title from the server: Gradio's changeLocale re-renders only the selected
        tab's, and a title sent while the console is still hidden does not reach its tab bar
        (hence a step after `load`, once the console shows)."""
        lang = lang or language(request)
        return tuple(gr.update(label=t(f"admin_tab_{tab}", lang)) for tab in TAB_KEYS)

    def change_language(self, lang: str, collection_name: str | None, request: gr.Request) -> tuple:
        # Everything the server wrote is written again in the new language; the chosen collection stays.
        shown = list(self.load(request, lang))
        if shown[1].get("visible"):
            user = signed_in(self.kb, request)
            shown[2 : 2 + len(self.view.outputs)] = self.view.render(user, collection_name, None, lang)
        return tuple(shown) + self.tab_titles(request, lang) + self.dashboard.dashboard(request, lang)


def build_admin(kb: KnowledgeBase) -> gr.Blocks:
    """The console: the collection choice above its tabs, each tab built by its own module."""
    actor = partial(signed_in, kb)
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
                # The Members, Evaluation and Folder sync tabs wire their own events as they are
                # built: they follow the collection choice, the refresh button and the switch.
                collections = collections_tab(kb, embedders)
                members = members_tab(kb, actor, demo, collection, refresh, lang_switch)
                upload = upload_tab(kb)
                documents = documents_tab(kb)
                dashboard = dashboard_tab(kb)
                evaluation = evaluation_tab(kb, actor, collection, refresh, lang_switch)
                folder_sync = sync_tab(kb, actor, collection, refresh, lang_switch)
        view = CollectionView(kb, message, collection, collections.table, members.table, documents.table, documents.choice)
        tabs = [collections.tab, members.tab, upload.tab, documents.tab, dashboard.tab, evaluation, folder_sync]
        # Wired once every tab exists: an action in one tab shows the tables of the others.
        # Gradio names each event's API endpoint after its handler, numbered in the order the
        # events are made (run_2, dashboard_5): the order below keeps those names.
        ConsolePage(kb, notice, console, lang_switch, view, members.role, upload.status, tabs, dashboard.view).wire(demo)
        dashboard.reindex.wire(collection, dashboard.view)
        view.wire_choice(refresh)
        collections.wire(view, dashboard.view)
        members.wire(view)
        documents.wire(view, dashboard.view)
        upload.wire(view, dashboard.view)
        dashboard.wire_refresh()
    demo.i18n_instance = I18N  # mount_gradio_app(i18n=...) would set it; this works without it too
    return demo
