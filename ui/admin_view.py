"""What the admin console's actions end by showing again, and who is acting. The collection
choice, the message line and the collections, members and documents tables show the selected
collection (CollectionView); an action in any tab (create, rename, delete, members, documents)
is run for the signed-in user and ends by showing all of them again, so that every tab reads
the same state. One that changes what the dashboard counts also refreshes it (DashboardView).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import gradio as gr

from app.models import User
from app.service import AccessDenied, KnowledgeBase, NotFound
from ui.admin_common import _warning
from ui.admin_format import collections_frame, dashboard_views, documents_frame, members_frame
from ui.i18n import language, t, value

# A console action: (kb, user, selected collection, *the event's other inputs) -> (the message,
# the collection to select next). The message is a Said (written out in the page's
# language), a str, or None to keep the message shown.
Action = Callable[..., tuple[Any, str | None]]


def signed_in(kb: KnowledgeBase, request: gr.Request | None) -> User:
    """The logged-in user (same accounts as the chat); the local operator before any account has a password."""
    if not kb.login_required():
        return kb.system_user()
    username = getattr(request, "username", None)
    if not username:
        refused = AccessDenied(t("admin_please_log_in"))
        refused.i18n_key, refused.i18n_params = "admin_please_log_in", {}  # shown in the page's language
        raise refused
    return kb.user(username)


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


def show(kb: KnowledgeBase, user: User, selected: str | None) -> tuple[str, str | None]:
    """Show the selected collection again, clearing the message."""
    return "", selected


def show_keeping_message(kb: KnowledgeBase, user: User, selected: str | None) -> tuple[None, str | None]:
    """Show the selected collection again under the message a step before this one wrote."""
    return None, selected


@dataclass(frozen=True, eq=False)
class DashboardView:
    kb: KnowledgeBase
    totals: gr.Markdown
    collections: gr.Dataframe
    jobs: gr.Dataframe
    models: gr.Dataframe

    @property
    def outputs(self) -> list:
        """What `dashboard` fills, in its order."""
        return [self.totals, self.collections, self.jobs, self.models]

    @cached_property
    def show(self) -> Callable[..., tuple]:
        """`dashboard` as one handler object for every event that shows the dashboard: Gradio's
        queue applies its concurrency limit (one at a time by default) per handler object, and
        a bound method is a new object at each access."""
        return self.dashboard

    def dashboard(self, request: gr.Request, lang: str | None = None) -> tuple:
        """The dashboard for the signed-in user, in `lang` or the page's language."""
        lang = lang or language(request)
        try:
            return dashboard_views(self.kb.dashboard(signed_in(self.kb, request)), lang)
        except (AccessDenied, NotFound) as exc:
            return _warning(exc, lang), gr.update(), gr.update(), gr.update()


@dataclass(frozen=True, eq=False)
class CollectionView:
    kb: KnowledgeBase
    message: gr.Markdown
    collection: gr.Dropdown
    collections_table: gr.Dataframe
    members_table: gr.Dataframe
    documents_table: gr.Dataframe
    document_choice: gr.Dropdown

    @property
    def outputs(self) -> list:
        """What `render` fills, in its order."""
        return [
            self.message,
            self.collection,
            self.collections_table,
            self.members_table,
            self.documents_table,
            self.document_choice,
        ]

    def wire_choice(self, refresh: gr.Button) -> None:
        """A collection chosen, or the refresh button: show it (again)."""
        self.collection.input(self.guarded(show), [self.collection], self.outputs)
        refresh.click(self.guarded(show), [self.collection], self.outputs)

    def render(self, user: User, selected: str | None, message: str | None, lang: str = "en") -> tuple:
        """Every output that depends on the selected collection, in `outputs` order; the first
        collection the user administers when `selected` is none of them."""
        kb = self.kb
        names = [c.name for c in kb.administered_collections(user)]
        selected = selected if selected in names else (names[0] if names else None)
        infos = {i.name: i for i in kb.collection_info(user)}
        documents = kb.documents(user, selected) if selected else []
        members = kb.members(user, selected) if selected else []
        return (
            gr.update() if message is None else message,
            gr.update(choices=names, value=selected),
            collections_frame(names, infos, lang),
            members_frame(members, lang),
            documents_frame(documents, lang),
            gr.update(choices=[(f"{d.id} · {d.filename}", d.id) for d in documents], value=None),
        )

    def guarded(self, action: Action) -> Callable[..., tuple]:
        """Run `action(kb, user, selected, *values)` for the current user and show the result;
        a refusal or bad input becomes the message. Gradio passes gr.Request only to a
        parameter annotated with it, hence one explicit signature per arity (each named
        `run`, which Gradio names the event's API endpoint after)."""

        def call(values: list, request: gr.Request | None) -> tuple:
            lang = language(request)
            try:
                user = signed_in(self.kb, request)
            except (AccessDenied, NotFound) as exc:
                return (_warning(exc, lang),) + tuple(gr.update() for _ in self.outputs[1:])
            selected = values[0]
            try:
                message, selected = action(self.kb, user, *values)
            except (AccessDenied, NotFound, ValueError) as exc:
                message = _warning(exc, lang)
            # A handler's message is a key and its values, so that it reads in the page's language.
            return self.render(user, selected, message.text(lang) if isinstance(message, Said) else message, lang)

        arity = len(inspect.signature(action).parameters) - 2  # the inputs: kb and user are not
        run: Callable[..., tuple]  # one of the signatures below
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
