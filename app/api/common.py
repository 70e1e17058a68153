"""What every resource's routes share: the coded error response and the one translation of a
service refusal into it (the app's exception handlers and the routes' `except ValueError` use it)."""

from fastapi import HTTPException

from app.conversations import ConversationNotFound
from app.service import AccessDenied, AlreadyRunning, EmptyCollection, NotFound


class CodedError(HTTPException):
    """An error response with a stable machine-readable `code` beside its English `detail`."""

    def __init__(self, status_code: int, detail: str, code: str) -> None:
        super().__init__(status_code=status_code, detail=detail)
        self.code = code


def as_coded_error(exc: Exception) -> CodedError:
    """The status and code of a service refusal; any other error is the caller's bad input (400)."""
    # NotFound first: a refusal to a non-member (service.Hidden) is both, and must read as missing.
    if isinstance(exc, ConversationNotFound):
        return CodedError(404, str(exc), "conversation_not_found")
    if isinstance(exc, NotFound):
        return CodedError(404, str(exc), "not_found")
    if isinstance(exc, AccessDenied):
        return CodedError(403, str(exc), "access_denied")
    if isinstance(exc, AlreadyRunning):  # before ValueError, which it also is
        return CodedError(409, str(exc), "already_running")
    if isinstance(exc, EmptyCollection):
        return CodedError(400, str(exc), "empty_collection")
    return CodedError(400, str(exc), "invalid_request")
