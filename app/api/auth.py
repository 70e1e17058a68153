"""Sign-in and the caller: POST /api/tokens (a user name and password for an API token),
GET /api/me, and the bearer-token dependency every other resource's routes take."""

# No `from __future__ import annotations`: FastAPI resolves the routes' annotations, and
# CurrentUser is local to the router factory.

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.accounts import AuthError, TooManyAttempts
from app.api.bodies import LoginRequest, TokenResponse, UserView
from app.directory import DirectoryUnavailable
from app.models import User
from app.service import KnowledgeBase

# What a router factory takes to know the caller: `Annotated[User, Depends(current_user)]`.
# One function object for the whole app, so FastAPI resolves it once per request.
UserDependency = Callable[..., User]


def current_user_dependency(kb: KnowledgeBase) -> UserDependency:
    """The caller from `Authorization: Bearer <token>`; 401 without a valid token."""
    # auto_error off: a missing token reaches current_user too, so every refusal is the same 401.
    bearer = HTTPBearer(auto_error=False)

    def current_user(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> User:
        try:
            return kb.accounts.authenticate(credentials.credentials if credentials else None)
        except AuthError as exc:
            raise HTTPException(status_code=401, detail=str(exc), headers={"WWW-Authenticate": "Bearer"}) from None

    return current_user


def router(kb: KnowledgeBase, current_user: UserDependency) -> APIRouter:
    routes = APIRouter()
    CurrentUser = Annotated[User, Depends(current_user)]

    @routes.post("/api/tokens", response_model=TokenResponse)
    def login(body: LoginRequest, request: Request) -> TokenResponse:
        """Failed logins are throttled per user name and client address (the connection's
        peer: a forwarded-for header is anyone's to write)."""
        try:
            user = kb.accounts.login(body.username, body.password, request.client.host if request.client else None)
        except TooManyAttempts as exc:
            raise HTTPException(status_code=429, detail=str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from None
        except AuthError as exc:
            raise HTTPException(status_code=401, detail=str(exc)) from None
        except DirectoryUnavailable as exc:
            raise HTTPException(status_code=503, detail=str(exc), headers={"Retry-After": "30"}) from None
        return TokenResponse(token=kb.accounts.issue_token(user, body.token_name), username=user.username)

    @routes.get("/api/me", response_model=UserView)
    def me(user: CurrentUser) -> UserView:
        return UserView(id=user.id, username=user.username, is_admin=user.is_admin)

    return routes
