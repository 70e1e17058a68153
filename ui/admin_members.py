"""The admin console's Members tab: who may read, edit or administer the selected collection,
and beside them the directory groups that give their members a role at sign-in
(ui.admin_directory)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr

from app.models import Role, User
from app.service import KnowledgeBase
from ui.admin_common import ROLES
from ui.admin_directory import directory_panel
from ui.admin_format import MEMBER_COLUMNS
from ui.admin_view import CollectionView, Said, said
from ui.i18n import I18N, Refusal


def set_member(kb: KnowledgeBase, user: User, selected: str | None, username: str, role: str | None) -> tuple[Said, str]:
    if not selected:
        raise Refusal("admin_choose_collection")
    username = (username or "").strip()
    if not username:
        raise Refusal("admin_enter_user")
    # The dropdown gives one of ROLES, or None once cleared (passed on as before).
    kb.manage_member(user, selected, username, Role(role) if role is not None else None)
    return said("admin_member_set", user=username, role=("role", role), collection=selected), selected


def remove_member(kb: KnowledgeBase, user: User, selected: str | None, username: str, _role: str) -> tuple[Said, str]:
    if not selected:
        raise Refusal("admin_choose_collection")
    username = (username or "").strip()
    if not username:
        raise Refusal("admin_enter_user")
    kb.manage_member(user, selected, username, None)
    return said("admin_member_removed", user=username, collection=selected), selected


@dataclass(frozen=True, eq=False)
class MembersTab:
    tab: gr.Tab
    table: gr.Dataframe
    name: gr.Textbox
    role: gr.Dropdown
    set_button: gr.Button
    remove_button: gr.Button

    def wire(self, view: CollectionView) -> None:
        self.set_button.click(view.guarded(set_member), [view.collection, self.name, self.role], view.outputs)
        self.remove_button.click(view.guarded(remove_member), [view.collection, self.name, self.role], view.outputs)


def members_tab(
    kb: KnowledgeBase,
    actor: Callable[[gr.Request | None], User],
    demo: gr.Blocks,
    collection: gr.Dropdown,
    refresh: gr.Button,
    lang_switch: gr.Radio,
) -> MembersTab:
    """The tab, built inside the console's gr.Tabs. Its directory groups panel follows the
    console's collection choice, refresh button and language switch by itself."""
    with gr.Tab(I18N("admin_tab_members"), id="members") as tab:
        table = gr.Dataframe(headers=MEMBER_COLUMNS, interactive=False, elem_id="members-table")
        with gr.Row():
            name = gr.Textbox(label=I18N("admin_user_name"), scale=3, elem_id="member-name")
            role = gr.Dropdown(label=I18N("admin_role"), choices=ROLES, value="reader", scale=1, elem_id="member-role")
        with gr.Row():
            set_button = gr.Button(I18N("admin_set_member"), variant="primary", elem_id="set-member")
            remove_button = gr.Button(I18N("admin_remove_member"), elem_id="remove-member")
        # Beside the members: a group's mapping gives its directory users a membership at sign-in.
        directory_panel(kb, actor, demo, tab, collection, refresh, lang_switch)
    return MembersTab(tab, table, name, role, set_button, remove_button)
