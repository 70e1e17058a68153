"""What the admin console's tabs share: tables in the viewer's language, warnings, CSV
downloads, the collection-following tab wiring and background jobs. The console (ui/admin.py)
and its tab modules (ui/admin_*.py) all import from here, so none of them imports another's
handlers."""

from __future__ import annotations

import csv
import queue
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Generic, TypeVar

import gradio as gr
import pandas as pd

from app.service import AccessDenied, NotFound
from ui.i18n import Refusal, columns, language, localized, t

ROLES = ["reader", "editor", "admin"]


def _frame(names: list[str], rows: list[list], lang: str = "en") -> pd.DataFrame:
    """A table for the screen, its headers in `lang` (CSV downloads keep the English ones)."""
    return pd.DataFrame(rows, columns=columns(names, lang))


def _size(n_bytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1024 or unit == "GB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    return ""


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _warning(exc: Exception, lang: str = "en") -> str:
    return t("warning", lang, message=localized(exc, lang))


def write_csv(name: str, columns: list[str], rows: list[list]) -> str:
    """A CSV in a fresh temporary folder, for a download (Gradio serves files from the temp dir)."""
    path = Path(tempfile.mkdtemp(prefix="mmkb-report-")) / name
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)
    return str(path)


def collection_tab(tab, actor, render, collection, refresh, lang_switch, outputs: list):
    """Wire a tab that follows the console's collection choice, refresh button and language
    switch; returns its `respond(request, selected, lang=None, action=None)`, which runs
    `action(user, lang)` (its message) for the console's user (`actor(request)`) and then
    `render(user, selected, lang, said)`. What the service refuses becomes a warning."""

    def respond(request: gr.Request | None, selected: str | None, lang: str | None = None, action=None) -> tuple:
        lang = lang or language(request)
        try:
            user = actor(request)
        except (AccessDenied, NotFound) as exc:
            return (_warning(exc, lang),) + tuple(gr.update() for _ in outputs[1:])
        said = ""
        if action is not None:
            try:
                if not selected:
                    raise Refusal("admin_choose_collection")
                said = action(user, lang)
            except (AccessDenied, NotFound, ValueError) as exc:
                said = _warning(exc, lang)
        try:
            return render(user, selected, lang, said)
        except (AccessDenied, NotFound) as exc:
            return render(user, None, lang, _warning(exc, lang))

    def show(selected: str | None, request: gr.Request):
        return respond(request, selected)

    def show_again(selected: str | None, request: gr.Request):
        # Opening the tab or refreshing it keeps the message of what was just done there: a
        # render still queued from the click on the tab must not wipe out the answer to the
        # action that followed it. Another collection clears it (show).
        # (A refusal, the only message a render says, still shows.)
        message, *rest = respond(request, selected)
        return (message or gr.update(), *rest)

    def show_in(lang: str, selected: str | None, request: gr.Request):
        # The switch's choice: its cookie may not be set yet.
        return respond(request, selected, lang)

    tab.select(show_again, [collection], outputs)
    collection.change(show, [collection], outputs)
    refresh.click(show_again, [collection], outputs)
    lang_switch.input(show_in, [lang_switch, collection], outputs)
    return respond


T = TypeVar("T")


class BackgroundJob(Generic[T]):
    """Runs `job(progress)` in a worker thread so the console can update while it works.
    Iterating yields the job's (done, total, current) progress events until it ends; then
    `result` or `error` holds the outcome."""

    def __init__(self, name: str, job: Callable[[Callable[..., None]], T]) -> None:
        self.result: T | None = None
        self.error: Exception | None = None
        self._events: queue.Queue = queue.Queue()
        threading.Thread(target=self._run, args=(job,), name=name, daemon=True).start()

    def _run(self, job: Callable[[Callable[..., None]], T]) -> None:
        try:
            self.result = job(lambda *event: self._events.put(event))
        except Exception as exc:  # shown by the caller; the console stays usable
            self.error = exc
        finally:
            self._events.put(None)

    def __iter__(self) -> Iterator[tuple]:
        while (event := self._events.get()) is not None:
            yield event
