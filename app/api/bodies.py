"""The REST API's own request and response bodies (those the service returns as they are live in
app.schemas). One module for every resource's: the OpenAPI schema names a body by its class
name, and by its module path once two share a name, so one module keeps the names unique."""

from pydantic import BaseModel, Field

from app.models import Role
from app.schemas import CollectionInfo, EvalRunInfo, JobInfo


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
        default=None,
        description=(
            "move to this text embedder: a re-index in the background (202 and its job; the old index serves until "
            "the job swaps the new one in)"
        ),
    )


class EmbedderChangeStarted(BaseModel):
    """PATCH /api/collections/{name}'s answer (202) to a text_embedder: the re-index runs on."""

    collection: CollectionInfo = Field(
        description="the collection as it is now: renamed if asked, still on its old text embedder until the job swaps"
    )
    job: JobInfo = Field(description="the re-index job (kind reindex), as it is now")
    job_url: str = Field(
        description=(
            "where to follow the job (also the Location header): its status goes from running to done (the collection "
            "is on the new embedder), failed or held (it stays on its old one; message says why), or interrupted "
            "(the server stopped; send the PATCH again and it resumes)"
        )
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
