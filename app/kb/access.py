"""Who may do what: users, and the one role check every component uses.

To a non-member a collection does not exist (Hidden, answered 404); a member who lacks the
role gets a plain AccessDenied (403) worded by the caller.
"""

from __future__ import annotations

from app.accounts import Accounts
from app.db import Database
from app.kb import repository
from app.kb.errors import AccessDenied, Hidden, NotFound
from app.models import Collection, Membership, Role, User

SYSTEM_USER = "local-admin"

# Each role may do what the roles after it may.
_RANK = {Role.reader: 0, Role.editor: 1, Role.admin: 2}


class Access:
    def __init__(self, database: Database, accounts: Accounts) -> None:
        self.database = database
        self.accounts = accounts

    # --- users ---------------------------------------------------------------------------

    def ensure_user(self, username: str, is_admin: bool = False) -> User:
        with self.database.session() as session:
            user = repository.user_by_name(session, username)
            if user is None:
                user = User(username=username, is_admin=is_admin)
                session.add(user)
                session.flush()
            return user

    def system_user(self) -> User:
        """The operator at the console: the CLI acts as this administrator."""
        return self.ensure_user(SYSTEM_USER, is_admin=True)

    def user(self, username: str) -> User:
        with self.database.session() as session:
            user = repository.user_by_name(session, username)
        if user is None:
            raise NotFound(f"no user {username!r}")
        return user

    def login_required(self) -> bool:
        """Once any account has a password, or a directory or an OpenID provider signs users
        in, every UI and API caller must authenticate."""
        if self.accounts.directory is not None or self.accounts.single_sign_on:
            return True
        with self.database.session() as session:
            return repository.users_with_password(session) > 0

    def grant(self, username: str, collection_name: str, role: Role = Role.reader) -> None:
        user = self.ensure_user(username)
        with self.database.session() as session:
            collection = repository.collection_by_name(session, collection_name)
            membership = repository.membership(session, user.id, collection.id)
            if membership is None:
                session.add(Membership(user_id=user.id, collection_id=collection.id, role=role))
            else:
                membership.role = role

    # --- roles ---------------------------------------------------------------------------

    def role(self, user: User, collection: Collection) -> Role | None:
        with self.database.session() as session:
            return repository.role(session, user.id, collection.id)

    def visible_role(self, user: User, collection: Collection) -> Role:
        """`user`'s role in `collection`; to a non-member the collection does not exist."""
        role = self.role(user, collection)
        if role is None:
            raise Hidden(f"no collection named {collection.name!r}")
        return role

    def require(self, user: User, collection: Collection, role: Role, refusal: str) -> None:
        """Passes if `user` is a global admin or has at least `role` in `collection`; a non-member
        is told the collection does not exist (Hidden), a member without the role `refusal`."""
        if user.is_admin:
            return
        if _RANK[self.visible_role(user, collection)] < _RANK[role]:
            raise AccessDenied(refusal)

    def administrable(self, user: User, collection_name: str, refusal: str | None = None) -> Collection:
        """The collection, if `user` administers it (a global admin, or its collection admin)."""
        with self.database.session() as session:
            collection = repository.collection_by_name(session, collection_name)
        self.require(
            user, collection, Role.admin, refusal or f"{user.username} is not an administrator of collection {collection_name}"
        )
        return collection

    def writable(self, user: User, collection: Collection) -> None:
        self.require(user, collection, Role.editor, f"{user.username} may not change collection {collection.name}")

    def readable_collections(self, user: User, names: list[str] | None = None) -> list[Collection]:
        """The collections `user` may read, optionally narrowed to `names` (unknown or
        forbidden names raise, so a typo is never silently an empty search)."""
        with self.database.session() as session:
            allowed = repository.member_collections(session, user)
        if names is None:
            return allowed
        by_name = {c.name: c for c in allowed}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise Hidden(f"no readable collection named {', '.join(missing)}")
        return [by_name[n] for n in names]

    def administered_collections(self, user: User) -> list[Collection]:
        """What the admin console shows `user`: every collection for a global admin, else
        those where `user` has the admin role (possibly none)."""
        with self.database.session() as session:
            return repository.member_collections(session, user, roles=[Role.admin])

    def changeable_collection_ids(self, user: User) -> list[int] | None:
        """Collections whose jobs `user` may see (admin or editor); None: all (global admin)."""
        if user.is_admin:
            return None
        with self.database.session() as session:
            return repository.member_collection_ids(session, user.id, [Role.admin, Role.editor])
