"""The refusals the knowledge base raises; the CLI, the API and the UI map them to their answers."""

from __future__ import annotations

from typing import Any


class AccessDenied(PermissionError):
    # Set by the UI on a refusal it words itself (ui.i18n.localized reads them back).
    i18n_key: str
    i18n_params: dict[str, Any]


class NotFound(LookupError):
    pass


class Hidden(AccessDenied, NotFound):
    """Refused to someone who may not know the thing exists (not a member of its collection):
    worded as the NotFound of a missing one, and answered 404 like it, so ids and names
    reveal nothing. Refusing a member who lacks the role stays a plain AccessDenied (403)."""


class EmptyCollection(ValueError):
    """Every collection asked has no ready document: there is nothing to search yet."""


class AlreadyRunning(ValueError):
    """The same work on the same thing is running already (a re-index of a collection, in this
    process or another): refused rather than queued or run twice. A ValueError, so callers that
    report bad requests (the CLI) report it too; the API answers it 409."""
