"""Collections: create, list, rename or move to another embedder (a re-index job in the
background), delete; their members and the directory (LDAP) groups mapped to roles; and each
collection's own evaluation set and runs."""

# No `from __future__ import annotations`: FastAPI resolves the routes' annotations, and
# CurrentUser is local to the router factory.

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from app.api.auth import UserDependency
from app.api.bodies import (
    CollectionUpdate,
    DirectoryGroupRole,
    DirectoryGroupView,
    EmbedderChangeStarted,
    EvalRunDone,
    MemberChange,
    NewCollection,
)
from app.api.common import CodedError, as_coded_error
from app.models import User
from app.schemas import CollectionInfo, EvalQuestionInfo, EvalRunInfo, MemberInfo, NewEvalQuestion
from app.service import KnowledgeBase


def router(kb: KnowledgeBase, current_user: UserDependency) -> APIRouter:
    routes = APIRouter()
    CurrentUser = Annotated[User, Depends(current_user)]

    @routes.get("/api/collections", response_model=list[CollectionInfo])
    def list_collections(user: CurrentUser) -> list[CollectionInfo]:
        return kb.collection_info(user)

    @routes.post("/api/collections", response_model=CollectionInfo, status_code=201)
    def create_collection(body: NewCollection, user: CurrentUser) -> CollectionInfo:
        try:
            collection = kb.create_collection(user, body.name, body.chunk_tokens, body.chunk_overlap_tokens, body.text_embedder)
        except ValueError as exc:
            raise as_coded_error(exc) from None
        return next(info for info in kb.collection_info(user) if info.id == collection.id)

    @routes.patch(
        "/api/collections/{name}",
        response_model=CollectionInfo,
        responses={
            200: {"description": "renamed (a body without text_embedder): the collection"},
            202: {
                "model": EmbedderChangeStarted,
                "description": (
                    "the move to text_embedder started as a re-index job (after the rename, if both were given); "
                    "`Location` is the job's URL"
                ),
                "headers": {"Location": {"description": "GET /api/jobs/{id} of the job", "schema": {"type": "string"}}},
            },
            409: {"description": "`already_running`: the collection is being re-indexed already; nothing was changed"},
        },
    )
    def update_collection(
        name: str, body: CollectionUpdate, user: CurrentUser, request: Request
    ) -> CollectionInfo | JSONResponse:
        """Rename, and/or move to another text embedder (global admins and the collection's admins).

        A rename is done at once (200 with the collection). A new text embedder is a re-index of
        every document (`kb reindex --embedder`), which can take hours: it is checked at once (400
        for an unknown embedder, 403/404 as for a rename, 409 while the collection is being
        re-indexed already), then runs in the background: 202 with the job, whose `Location`
        (`GET /api/jobs/{id}`) shows its progress and how it ended. `done`: the collection is on
        the new embedder; `failed` (a document failed to re-index) or `held` (the collection's
        evaluation set did worse on the new index): it stays on its old one, and the job's
        message says why. Until the job swaps the new index in, the old one answers. With both
        fields, the rename comes first and the job runs on the new name; a refused start
        renames nothing."""
        if body.name is None and body.text_embedder is None:
            raise CodedError(400, "nothing to change: give name and/or text_embedder", "invalid_request")
        try:
            if body.text_embedder is None:
                assert body.name is not None  # one of the two, checked above
                renamed = kb.rename_collection(user, name, body.name).name
                return next(info for info in kb.collection_info(user) if info.name == renamed)
            started = kb.change_embedder(user, name, body.text_embedder, new_name=body.name)
        except ValueError as exc:
            raise as_coded_error(exc) from None
        job_url = request.scope.get("root_path", "") + request.app.url_path_for("get_job", job_id=started.job_id)
        accepted = EmbedderChangeStarted(
            collection=next(info for info in kb.collection_info(user) if info.name == started.collection),
            job=kb.job(user, started.job_id),
            job_url=job_url,
        )
        return JSONResponse(jsonable_encoder(accepted), status_code=202, headers={"Location": job_url})

    @routes.delete("/api/collections/{name}")
    def delete_collection(name: str, user: CurrentUser) -> dict:
        """Delete with every document, chunk, index file and stored file no other collection uses."""
        removed = kb.delete_collection(user, name)
        return {"collection": name, "deleted_documents": removed.document_ids, "deleted_chunks": removed.chunks}

    @routes.get("/api/collections/{name}/members", response_model=list[MemberInfo])
    def list_members(name: str, user: CurrentUser) -> list[MemberInfo]:
        return kb.members(user, name)

    @routes.put("/api/collections/{name}/members")
    def change_member(name: str, body: MemberChange, user: CurrentUser) -> dict:
        kb.manage_member(user, name, body.username, body.role)
        return {"collection": name, "username": body.username, "role": body.role}

    # --- directory (LDAP) groups whose members get a role at sign-in; the collection's admins.
    # `{group:path}`: a DN holds '=' and ',' (fine in a path), and may hold an escaped '/',
    # which arrives decoded; the group is the rest of the path either way.

    @routes.get("/api/collections/{name}/directory-groups", response_model=list[DirectoryGroupView])
    def list_directory_groups(name: str, user: CurrentUser) -> list[DirectoryGroupView]:
        return [DirectoryGroupView(group=group, role=role) for group, role in kb.directory_groups(user, name)]

    @routes.put("/api/collections/{name}/directory-groups/{group:path}")
    def map_directory_group(name: str, group: str, body: DirectoryGroupRole, user: CurrentUser) -> dict:
        """Members of `group` (URL-encoded) get `role` at their next sign-in; a mapped group's role changes."""
        try:
            kb.map_directory_group(user, name, group, body.role)
        except ValueError as exc:
            raise as_coded_error(exc) from None
        return {"collection": name, "group": group.strip(), "role": body.role}

    @routes.delete("/api/collections/{name}/directory-groups/{group:path}")
    def unmap_directory_group(name: str, group: str, user: CurrentUser) -> dict:
        try:
            kb.map_directory_group(user, name, group, None)
        except ValueError as exc:
            raise as_coded_error(exc) from None
        return {"collection": name, "deleted_group": group.strip()}

    # --- a collection's own evaluation set: readers see it, editors and admins change and run it

    @routes.get("/api/collections/{name}/eval/questions", response_model=list[EvalQuestionInfo])
    def list_eval_questions(name: str, user: CurrentUser) -> list[EvalQuestionInfo]:
        return kb.eval_questions(user, name)

    @routes.post("/api/collections/{name}/eval/questions", response_model=EvalQuestionInfo, status_code=201)
    def add_eval_question(name: str, body: NewEvalQuestion, user: CurrentUser) -> EvalQuestionInfo:
        """The file must be a ready document of the collection, and the page one it has."""
        try:
            (added,) = kb.add_eval_questions(user, name, [body])
        except ValueError as exc:
            raise as_coded_error(exc) from None
        return added

    @routes.delete("/api/collections/{name}/eval/questions/{question_id}")
    def remove_eval_question(name: str, question_id: int, user: CurrentUser) -> dict:
        kb.remove_eval_question(user, name, question_id)
        return {"collection": name, "deleted_question": question_id}

    @routes.post("/api/collections/{name}/eval/runs", response_model=EvalRunDone, status_code=201)
    def run_eval(name: str, user: CurrentUser) -> EvalRunDone:
        """Run the set against the live index now; recorded in the history."""
        try:
            run, scores = kb.run_eval(user, name)
        except ValueError as exc:
            raise as_coded_error(exc) from None
        return EvalRunDone(**run.model_dump(), missed=scores.missed)

    @routes.get("/api/collections/{name}/eval/runs", response_model=list[EvalRunInfo])
    def list_eval_runs(name: str, user: CurrentUser, limit: int = 50) -> list[EvalRunInfo]:
        """Newest first: runs on demand, and each re-index's `live` and `candidate` scores with
        its `verdict` (swapped, kept: the live index stayed, forced: swapped despite a drop)."""
        return kb.eval_runs(user, name, limit=max(1, min(limit, 500)))

    return routes
