"""The REST API's own request and response bodies (those the service returns as they are live in
app.schemas). One module for every resource's: the OpenAPI schema names a body by its class
name, and by its module path once two share a name, so one module keeps the names unique."""

from pydantic import BaseModel, Field

from app.models import Role
from app.schemas import EvalRunInfo


class LoginRequest(BaseModel):
    username: str
    password: str
    token_name: str = "api"


class TokenResponse(BaseModel):
    token: str
    username: str


class UserView(BaseModel):
    id: int
    username: str
    is_admin: bool


class NewCollection(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    chunk_tokens: int | None = Field(default=None, description="chunk size in tokens; default MMKB_CHUNK_TOKENS")
    chunk_overlap_tokens: int | None = Field(default=None, description="overlap in tokens; default MMKB_CHUNK_OVERLAP_TOKENS")
    text_embedder: str | None = Field(default=None, description="text embedder (`kb models`); default MMKB_TEXT_EMBEDDER")


class CollectionUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=128, description="the new name")
    text_embedder: str | None = Field(
        default=None, description="move to this text embedder: re-indexes every document first (the old index serves until then)"
    )


class MemberChange(BaseModel):
    username: str
    role: Role | None = Field(description="admin, editor or reader; null removes the member")


class DirectoryGroupRole(BaseModel):
    role: Role = Field(description="admin, editor or reader")


class DirectoryGroupView(BaseModel):
    group: str = Field(description="the directory group's name (e.g. its cn) or DN")
    role: Role


class DocumentView(BaseModel):
    id: int
    filename: str
    status: str
    error: str | None
    page_count: int | None
    size_bytes: int


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=4000)
    collections: list[str] | None = None
    conversation_id: int | None = None
    hyde: bool | None = Field(default=None, description="HyDE for this question; default MMKB_HYDE")
    mmr_lambda: float | None = Field(default=None, ge=0.0, le=1.0, description="MMR for this question; default MMKB_MMR_LAMBDA")


class SearchRequest(BaseModel):
    question: str = Field(min_length=1, max_length=4000)
    collections: list[str] | None = None
    limit: int | None = Field(default=None, ge=1, le=100, description="how many passages; default MMKB_CONTEXT_CHUNKS")
    hyde: bool | None = Field(default=None, description="HyDE for this search; default MMKB_HYDE")


class EvalRunDone(EvalRunInfo):
    missed: list[str] = Field(description="questions whose file (and page) was not among the first 5 places")


class NewConversation(BaseModel):
    title: str = ""


class FeedbackRequest(BaseModel):
    rating: int = Field(description="+1 or -1")
    comment: str = ""
