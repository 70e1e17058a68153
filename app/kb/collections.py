"""Collections: creating, renaming and deleting them, their chunking, members, directory
groups and documents, and what each reader sees of them."""

from __future__ import annotations

import shutil
from collections.abc import Callable

from sqlalchemy import delete, func, select

from app import registry
from app.db import Database
from app.indexes import TEXT_SPACE, IndexManager, KeywordIndexManager
from app.kb import repository
from app.kb.access import Access
from app.kb.errors import AccessDenied, NotFound
from app.model_set import ModelSet
from app.models import Collection, DirectoryGroup, Document, DocumentStatus, IngestJob, Membership, Role, User
from app.removal import RemovalResult, finish_removal, remove_in_session
from app.schemas import CollectionInfo, MemberInfo
from app.settings import Settings

# Below this a chunk is a sentence fragment: too little for an embedding to mean anything.
MIN_CHUNK_TOKENS = 16


def check_chunking(tokens: int, overlap: int) -> None:
    if tokens < MIN_CHUNK_TOKENS:
        raise ValueError(f"chunk size must be at least {MIN_CHUNK_TOKENS} tokens, not {tokens}")
    if not 0 <= overlap < tokens:
        raise ValueError(f"chunk overlap must be at least 0 and less than the chunk size ({tokens}), not {overlap}")


class Collections:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        models: ModelSet,
        access: Access,
        indexes: Callable[[], IndexManager],
        keyword_indexes: KeywordIndexManager,
    ) -> None:
        self.settings = settings
        self.database = database
        self.models = models
        self.access = access
        self._indexes = indexes  # opened on first use (the knowledge base's lazy property)
        self.keyword_indexes = keyword_indexes

    # --- creating, configuring, renaming, deleting ------------------------------------------

    def get_or_create(self, name: str, owner: User | None = None) -> Collection:
        name = name.strip()
        if not name:
            raise ValueError("a collection needs a name")
        # Two processes (replicas, the CLI) first writing to one new name make one collection.
        with self.database.locks.hold(f"collection-name:{name}"), self.database.session() as session:
            collection = repository.find_collection(session, name)
            if collection is None:
                collection = Collection(name=name)
                session.add(collection)
                session.flush()
                if owner is not None and not owner.is_admin:
                    session.add(Membership(user_id=owner.id, collection_id=collection.id, role=Role.admin))
            return collection

    def create(
        self,
        user: User,
        name: str,
        chunk_tokens: int | None = None,
        chunk_overlap_tokens: int | None = None,
        text_embedder: str | None = None,
    ) -> Collection:
        """text_embedder: a registry name (`kb models`); None = MMKB_TEXT_EMBEDDER, followed as it changes."""
        if not user.is_admin:
            raise AccessDenied("only administrators create collections")
        # Checked before anything is written: a refused setting must not leave a collection behind.
        check_chunking(
            chunk_tokens or self.settings.chunk_tokens,
            chunk_overlap_tokens if chunk_overlap_tokens is not None else self.settings.chunk_overlap_tokens,
        )
        if text_embedder is not None:
            text_embedder = registry.check_text_embedder(text_embedder, self.settings)
            with self.database.session() as session:
                existing = repository.find_collection(session, name.strip())
            if existing is not None and self.models.embedder_name(existing.text_embedder) != text_embedder:
                raise ValueError(
                    f"collection {existing.name!r} exists already, with the text embedder "
                    f"{self.models.embedder_name(existing.text_embedder)}; change it with "
                    f"`kb reindex --collection {existing.name} --embedder {text_embedder}`"
                )
        collection = self.get_or_create(name)
        if text_embedder is not None and collection.text_embedder != text_embedder:
            with self.database.session() as session:
                row = session.get(Collection, collection.id)
                assert row is not None  # get_or_create just returned it
                collection = row
                collection.text_embedder = text_embedder
        if chunk_tokens is not None or chunk_overlap_tokens is not None:
            collection = self.configure_chunking(user, name, chunk_tokens, chunk_overlap_tokens)
        return collection

    def configure_chunking(
        self, user: User, name: str, chunk_tokens: int | None = None, chunk_overlap_tokens: int | None = None
    ) -> Collection:
        """Set a collection's chunk size and overlap (tokens), used for the files ingested from
        now on; None leaves a value as it is. Documents already stored keep their chunks until
        they are ingested again."""
        with self.database.session() as session:
            collection = repository.collection_by_name(session, name)
        self.access.require(user, collection, Role.admin, f"{user.username} may not configure collection {collection.name}")
        with self.database.session() as session:
            collection = repository.collection_by_name(session, name)
            tokens = chunk_tokens if chunk_tokens is not None else (collection.chunk_tokens or self.settings.chunk_tokens)
            overlap = (
                chunk_overlap_tokens
                if chunk_overlap_tokens is not None
                else (
                    collection.chunk_overlap_tokens
                    if collection.chunk_overlap_tokens is not None
                    else self.settings.chunk_overlap_tokens
                )
            )
            check_chunking(tokens, overlap)
            if chunk_tokens is not None:
                collection.chunk_tokens = chunk_tokens
            if chunk_overlap_tokens is not None:
                collection.chunk_overlap_tokens = chunk_overlap_tokens
            return collection

    def rename(self, actor: User, name: str, new_name: str) -> Collection:
        """Global admins and the collection's admins. Indexes and files are keyed by id, so
        only the row changes; readers see the new name at their next refresh."""
        new_name = (new_name or "").strip()
        if not new_name:
            raise ValueError("a collection needs a name")
        if len(new_name) > 128:
            raise ValueError("collection names have at most 128 characters")
        collection = self.access.administrable(actor, name, f"{actor.username} may not rename collection {name}")
        with self.database.session() as session:
            clash = session.scalar(select(Collection).where(Collection.name == new_name, Collection.id != collection.id))
            if clash is not None:
                raise ValueError(f"a collection named {new_name!r} exists already")
            row = session.get(Collection, collection.id)
            assert row is not None  # administrable just found it
            row.name = new_name
            return row

    def delete(self, actor: User, name: str) -> RemovalResult:
        """Global admins and the collection's admins. One transaction removes the documents,
        chunks, memberships, jobs and the collection row; then the index files go, then the
        stored originals and figures no document of any other collection uses."""
        collection = self.access.administrable(actor, name, f"{actor.username} may not delete collection {name}")
        with self.database.session() as session:
            pending = remove_in_session(session, repository.documents_of(session, collection.id))
            pending.collection_id = collection.id
            session.execute(delete(Membership).where(Membership.collection_id == collection.id))
            session.execute(delete(IngestJob).where(IngestJob.collection_id == collection.id))
            session.execute(delete(Collection).where(Collection.id == collection.id))
        indexes = self._indexes()
        removed = finish_removal(self.database.session, indexes, pending)
        indexes.drop_collection(collection.id)
        self.keyword_indexes.drop_collection(collection.id)
        # The folder is this collection's alone (named by its id, which SQLite may hand out again).
        shutil.rmtree(indexes.path(collection.id, TEXT_SPACE).parent, ignore_errors=True)
        return removed

    # --- what readers see ---------------------------------------------------------------

    def info(self, user: User) -> list[CollectionInfo]:
        infos = []
        with self.database.session() as session:
            for collection in self.access.readable_collections(user):
                counts = repository.document_counts(session, collection.id)
                infos.append(
                    CollectionInfo(
                        id=collection.id,
                        name=collection.name,
                        documents=sum(counts.values()),
                        ready_documents=counts.get(DocumentStatus.ready, 0),
                        failed_documents=counts.get(DocumentStatus.failed, 0),
                        chunks=repository.chunk_count(session, collection.id),
                        chunk_tokens=collection.chunk_tokens or self.settings.chunk_tokens,
                        chunk_overlap_tokens=(
                            collection.chunk_overlap_tokens
                            if collection.chunk_overlap_tokens is not None
                            else self.settings.chunk_overlap_tokens
                        ),
                        text_embedder=self.models.embedder_name(collection.text_embedder),
                    )
                )
        return infos

    def documents(self, user: User, collection_name: str) -> list[Document]:
        (collection,) = self.access.readable_collections(user, [collection_name])
        with self.database.session() as session:
            return repository.documents_of(session, collection.id, by_filename=True)

    def find_document(self, user: User, collection_name: str, filename_or_id: str) -> Document:
        """One document of a collection by its id or its file name; ambiguity is an error, never a guess."""
        documents = self.documents(user, collection_name)
        if filename_or_id.isdigit():
            by_id = [d for d in documents if d.id == int(filename_or_id)]
            if by_id:
                return by_id[0]
        matches = [d for d in documents if d.filename == filename_or_id]
        if not matches:
            raise NotFound(f"no document {filename_or_id!r} in collection {collection_name!r}")
        if len(matches) > 1:
            ids = ", ".join(str(d.id) for d in matches)
            raise ValueError(f"{len(matches)} documents are named {filename_or_id!r} in {collection_name!r}; give an id ({ids})")
        return matches[0]

    def delete_document(self, user: User, collection_name: str, document_id: int) -> RemovalResult:
        """Remove a document: its chunks, its vectors, and files no other document uses."""
        with self.database.session() as session:
            collection = repository.collection_by_name(session, collection_name)
        self.access.writable(user, collection)
        with self.database.session() as session:
            document = session.get(Document, document_id)
            if document is None or document.collection_id != collection.id:
                raise NotFound(f"no document with id {document_id} in collection {collection_name!r}")
            pending = remove_in_session(session, [document])
        return finish_removal(self.database.session, self._indexes(), pending)

    # --- members and directory groups -------------------------------------------------

    def members(self, actor: User, collection_name: str) -> list[MemberInfo]:
        collection = self.access.administrable(
            actor, collection_name, f"{actor.username} may not see the members of {collection_name}"
        )
        with self.database.session() as session:
            rows = repository.members(session, collection.id)
        return [MemberInfo(username=username, role=role.value) for username, role in rows]

    def manage_member(self, actor: User, collection_name: str, username: str, role: Role | None) -> None:
        """Add, change (role) or remove (None) a member; needs a global admin or the collection's admin."""
        collection = self.access.administrable(
            actor, collection_name, f"{actor.username} may not manage members of {collection_name}"
        )
        member = self.access.user(username)
        if role is None:
            with self.database.session() as session:
                membership = repository.membership(session, member.id, collection.id)
                if membership is not None:
                    session.delete(membership)
            return
        self.access.grant(username, collection_name, role)

    def map_directory_group(self, actor: User, collection_name: str, group: str, role: Role | None) -> None:
        """Members of directory `group` (its name or DN) get `role` in the collection at their next
        login; None removes the mapping. Once a collection maps any group, its directory users'
        memberships follow their groups (app.directory_accounts). Needs the collection's admin."""
        collection = self.access.administrable(
            actor, collection_name, f"{actor.username} may not map groups of {collection_name}"
        )
        group = group.strip()
        if not group:
            raise ValueError("a directory group needs a name or DN")
        with self.database.session() as session:
            mapping = session.scalar(
                select(DirectoryGroup).where(
                    DirectoryGroup.collection_id == collection.id, func.lower(DirectoryGroup.group_name) == group.lower()
                )
            )
            if role is None:
                if mapping is None:
                    raise NotFound(f"collection {collection_name} maps no directory group {group!r}")
                session.delete(mapping)
            elif mapping is None:
                session.add(DirectoryGroup(collection_id=collection.id, group_name=group, role=role))
            else:
                mapping.role = role

    def directory_groups(self, actor: User, collection_name: str) -> list[tuple[str, Role]]:
        collection = self.access.administrable(actor, collection_name)
        with self.database.session() as session:
            rows = session.execute(
                select(DirectoryGroup.group_name, DirectoryGroup.role)
                .where(DirectoryGroup.collection_id == collection.id)
                .order_by(DirectoryGroup.group_name)
            )
            return [(name, role) for name, role in rows]
