"""A directory sign-in made local: the User row (no password kept) and its memberships in
the collections that map directory groups (models.DirectoryGroup), set from the user's
groups at each login, added and removed alike. Collections that map no group keep the
memberships granted here by hand."""

from __future__ import annotations

import logging

from sqlalchemy import select

from app.db import Database
from app.directory import DirectoryUser
from app.models import DirectoryGroup, Membership, Role, User

logger = logging.getLogger(__name__)

# Two mapped groups of one user in one collection: the stronger role wins.
_RANK = {Role.reader: 0, Role.editor: 1, Role.admin: 2}


def may_sign_in_from_directory(user: User | None) -> bool:
    """Whether a login under this name is the directory's to check: an unknown name, a
    directory user, or a passwordless local name (granted roles before their first login).
    Never a local account with a password, nor a passwordless administrator such as the
    console's own: a directory entry of the same name must not take them over."""
    if user is None or user.from_directory:
        return True
    return not user.password_hash and not user.is_admin


def roles_from_groups(mappings: list[DirectoryGroup], groups: frozenset[str]) -> dict[int, Role]:
    """collection id -> the role the user's groups give there (only collections they give one in)."""
    roles: dict[int, Role] = {}
    for mapping in mappings:
        if mapping.group_name.lower() in groups:
            current = roles.get(mapping.collection_id)
            if current is None or _RANK[mapping.role] > _RANK[current]:
                roles[mapping.collection_id] = mapping.role
    return roles


def sync_directory_user(database: Database, found: DirectoryUser) -> User:
    """The local user for `found`, created or updated, with memberships matching its groups."""
    with database.session() as session:
        user = session.scalar(select(User).where(User.username == found.username))
        if user is None:
            user = User(username=found.username, is_admin=False)
            session.add(user)
        user.from_directory = True
        user.password_hash = None  # the directory's password is never kept here
        session.flush()
        mappings = list(session.scalars(select(DirectoryGroup)))
        wanted = roles_from_groups(mappings, found.groups)
        managed = {m.collection_id for m in mappings}
        current = {m.collection_id: m for m in session.scalars(select(Membership).where(Membership.user_id == user.id))}
        for collection_id in managed:
            membership, role = current.get(collection_id), wanted.get(collection_id)
            if role is None and membership is not None:
                session.delete(membership)
            elif role is not None and membership is None:
                session.add(Membership(user_id=user.id, collection_id=collection_id, role=role))
            elif role is not None and membership is not None:  # the branch above took a missing one
                membership.role = role
        session.flush()
        logger.info(
            "directory login: %r, roles in %d collection(s) from %d mapped group(s)",
            found.username[:100],
            len(wanted),
            len(mappings),
        )
        return user
