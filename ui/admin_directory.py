"""The admin console's Directory groups panel (in the Members tab): which directory (LDAP)
groups give their members a role in the selected collection, applied at each member's next
sign-in (app.directory_accounts). Like the rest of the console it only talks to
`app.service.KnowledgeBase`, which decides who may see and change the mappings.
"""

from __future__ import annotations

from typing import cast

import gradio as gr
import pandas as pd

from app.models import Role, User
from app.service import KnowledgeBase
from ui.admin_common import ROLES, _frame, collection_tab
from ui.i18n import I18N, Refusal, t, value

GROUP_COLUMNS = ["group", "role"]
DN_EXAMPLE = "cn=plant-admins,ou=groups,dc=example,dc=org"


def group_rows(groups: list[tuple[str, Role]], lang: str) -> list[list[str]]:
    return [[name, value(role.value, lang, "role")] for name, role in groups]


def map_group(kb: KnowledgeBase, user: User, collection: str, group: str | None, role: str | None, lang: str) -> str:
    """Map `group` to `role` (a new mapping or a changed role); the message to show."""
    group = (group or "").strip()
    if not group:
        raise Refusal("dir_enter_group")
    if role not in ROLES:
        raise Refusal("dir_choose_role")
    kb.map_directory_group(user, collection, group, Role(role))
    return t("dir_mapped", lang, group=group, role=value(role, lang, "role"), collection=collection)


def unmap_group(kb: KnowledgeBase, user: User, collection: str, group: str | None, lang: str) -> str:
    group = (group or "").strip()
    if not group:
        raise Refusal("dir_enter_group")
    kb.map_directory_group(user, collection, group, None)
    return t("dir_removed", lang, group=group, collection=collection)


def directory_panel(
    kb: KnowledgeBase, actor, demo: gr.Blocks, tab: gr.Tab, collection: gr.Dropdown, refresh: gr.Button, lang_switch: gr.Radio
) -> None:
    """The panel, built inside `tab` (the Members tab); `actor(request)` is the console's user.
    It follows the console's collection choice, its refresh button and its language switch."""
    with gr.Column(elem_id="directory-panel"):
        gr.Markdown(I18N("dir_title"))
        gr.Markdown(I18N("dir_intro"))
        note = gr.Markdown(elem_id="directory-note")
        message = gr.Markdown(elem_id="directory-message")
        table = gr.Dataframe(
            headers=GROUP_COLUMNS, interactive=False, wrap=True, label=I18N("dir_groups_label"), elem_id="directory-groups"
        )
        with gr.Row():
            group = gr.Textbox(label=I18N("dir_group"), placeholder=DN_EXAMPLE, scale=3, elem_id="directory-group")
            role = gr.Dropdown(label=I18N("admin_role"), choices=ROLES, value="reader", scale=1, elem_id="directory-role")
        with gr.Row():
            map_button = gr.Button(I18N("dir_map"), variant="primary", elem_id="directory-map")
            remove_button = gr.Button(I18N("dir_remove"), elem_id="directory-remove")
    outputs = [message, note, table, role]

    def render(user: User, selected: str | None, lang: str, said: str) -> tuple[str, str, pd.DataFrame, dict]:
        # A mapping with no directory to sign in through would silently do nothing: say so.
        unused = t("dir_no_directory", lang) if kb.accounts.directory is None else ""
        roles = gr.update(choices=[(value(r, lang, "role"), r) for r in ROLES])  # the value stays English
        groups = kb.directory_groups(user, selected) if selected else []
        return said, unused, _frame(GROUP_COLUMNS, group_rows(groups, lang), lang), roles

    respond = collection_tab(tab, actor, render, collection, refresh, lang_switch, outputs)

    # respond runs an action only once a collection is chosen: `selected` is then a str.
    def on_map(selected: str | None, name: str | None, chosen: str | None, request: gr.Request):
        return respond(request, selected, action=lambda user, lang: map_group(kb, user, cast(str, selected), name, chosen, lang))

    def on_remove(selected: str | None, name: str | None, request: gr.Request):
        return respond(request, selected, action=lambda user, lang: unmap_group(kb, user, cast(str, selected), name, lang))

    def on_load(selected: str | None, request: gr.Request):
        # The role names in the page's language from the start, before any collection is chosen.
        return respond(request, selected)

    demo.load(on_load, [collection], outputs)
    map_button.click(on_map, [collection, group, role], outputs)
    remove_button.click(on_remove, [collection, group], outputs)
