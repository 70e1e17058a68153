"""The SQL the knowledge base's components share: plain functions taking a session."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.kb.errors import NotFound
from app.models import Chunk, Collection, Document, DocumentStatus, Membership, Role, User


def find_collection(session: Session, name: str) -> Collection | None:
    return session.scalar(select(Collection).where(Collection.name == name))


def collection_by_name(session: Session, name: str) -> Collection:
    collection = find_collection(session, name)
    if collection is None:
        raise NotFound(f"no collection named {name!r}")
    return collection


def all_collections(session: Session) -> list[Collection]:
    return list(session.scalars(select(Collection).order_by(Collection.name)))


def member_collections(session: Session, user: User, roles: Iterable[Role] | None = None) -> list[Collection]:
    """Every collection for a global admin; else those where `user` is a member (with one of `roles`)."""
    query = select(Collection).order_by(Collection.name)
    if not user.is_admin:
        query = query.join(Membership).where(Membership.user_id == user.id)
        if roles is not None:
            query = query.where(Membership.role.in_(list(roles)))
    return list(session.scalars(query))


def member_collection_ids(session: Session, user_id: int, roles: Iterable[Role]) -> list[int]:
    return list(
        session.scalars(select(Membership.collection_id).where(Membership.user_id == user_id, Membership.role.in_(list(roles))))
    )


def membership(session: Session, user_id: int, collection_id: int) -> Membership | None:
    return session.scalar(select(Membership).where(Membership.user_id == user_id, Membership.collection_id == collection_id))


def role(session: Session, user_id: int, collection_id: int) -> Role | None:
    return session.scalar(select(Membership.role).where(Membership.user_id == user_id, Membership.collection_id == collection_id))


def members(session: Session, collection_id: int) -> list[tuple[str, Role]]:
    rows = session.execute(
        select(User.username, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.collection_id == collection_id)
        .order_by(User.username)
    ).all()
    return [(username, member_role) for username, member_role in rows]


def user_by_name(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def users_with_password(session: Session) -> int:
    count = session.scalar(select(func.count()).select_from(User).where(User.password_hash.is_not(None)))
    assert count is not None  # COUNT always gives a row
    return count


def documents_of(session: Session, collection_id: int, by_filename: bool = False) -> list[Document]:
    query = select(Document).where(Document.collection_id == collection_id)
    if by_filename:
        query = query.order_by(Document.filename)
    return list(session.scalars(query))


def document_counts(session: Session, collection_id: int) -> dict[DocumentStatus, int]:
    """The collection's documents per status."""
    rows = session.execute(
        select(Document.status, func.count()).where(Document.collection_id == collection_id).group_by(Document.status)
    ).all()
    return {status: count for status, count in rows}


def chunk_count(session: Session, collection_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Chunk).where(Chunk.collection_id == collection_id)) or 0


def ready_document_count(session: Session, collection_ids: list[int]) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(Document)
            .where(Document.collection_id.in_(collection_ids), Document.status == DocumentStatus.ready)
        )
        or 0
    )


def chunk_with_document(session: Session, chunk_id: int) -> tuple[Chunk, Document] | None:
    row = session.execute(
        select(Chunk, Document).join(Document, Document.id == Chunk.document_id).where(Chunk.id == chunk_id)
    ).first()
    return None if row is None else (row[0], row[1])


def text_embedder_of(session: Session, collection_id: int) -> str | None:
    return session.scalar(select(Collection.text_embedder).where(Collection.id == collection_id))
