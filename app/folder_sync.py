"""Folder sync: a collection mirrors a folder tree (`kb sync`, the console's Folder sync tab).

A run compares the tree with what the last run saw (`sync_files`: path, size, modification
time, sha256, document) before it reads anything:
- a file whose size and time are as last seen, and whose document is still ready, is
  unchanged without being read; any other file is hashed, and is unchanged if its hash is;
- new and changed files go through the one ingest path (KnowledgeBase.ingest), named by
  their path in the folder ("hr/travel.pdf"), so a changed file replaces its old version
  (app.ingestion) and a file that fails does so alone, keeping its old version;
- the documents of files gone from the folder are deleted only when asked (`delete`);
- what the run saw is written in one transaction at the end, with those deletions.
A run killed anywhere leaves at most documents that are ready but not yet recorded: the next
run hashes those files, the ingest skips them by hash and they are recorded then, so there
are no duplicates and nothing is lost. One run per collection at a time (a lock file).
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy import select, update

from app.archives import is_plain_zip
from app.db import Database
from app.db_locks import Timeout
from app.ingestion import Upload, _sha256
from app.models import Collection, Document, DocumentStatus, SyncFile, SyncFolder, User, utcnow
from app.removal import finish_removal, remove_in_session
from app.schemas import FileOutcome, FileResult
from ingest.loaders import safe_relative_name

if TYPE_CHECKING:
    from app.indexes import IndexManager
    from app.ingestion import ProgressCallback
    from app.schemas import IngestReport
    from app.settings import Settings


class SyncTarget(Protocol):
    """What a sync needs of the knowledge base (app.service.KnowledgeBase is one); named
    here so that this module does not import the service that imports it."""

    settings: Settings
    database: Database

    @property
    def indexes(self) -> IndexManager: ...

    def ingest(
        self,
        user: User,
        collection_name: str,
        paths: list[Path] | None = None,
        uploads: list[Upload] | None = None,
        progress: ProgressCallback | None = None,
    ) -> IngestReport: ...


SyncProgress = Callable[[str, int, int, str], None]  # (stage: "hash" | "ingest", done, total, current file)

# A file written this close to the scan may change again within the same time tick without
# its size or time showing it: its time is stored as untrusted (-1) and it is hashed next run.
RACY_NS = 2_000_000_000
# Dotfiles and dot-folders (.git, .DS_Store), Office lock files, editors' swap files and
# partial downloads are never documents.
IGNORED_PREFIXES = (".", "~$")
IGNORED_SUFFIXES = ("~", ".tmp", ".swp", ".part", ".crdownload")
MAX_NAME = 512  # Document.filename


def ignored(name: str) -> bool:
    return name.startswith(IGNORED_PREFIXES) or name.lower().endswith(IGNORED_SUFFIXES)


class SyncBusy(ValueError):
    """Another sync of the same collection is running (this process or another)."""


class OutsideSyncRoots(PermissionError):
    """A folder the console may not register or run: MMKB_SYNC_ROOTS does not hold it."""


class SyncFailure(BaseModel):
    file: str
    error: str


class SyncSummary(BaseModel):
    collection: str
    folder: str
    started_at: datetime
    finished_at: datetime | None = None
    added: list[str] = Field(default_factory=list)
    replaced: list[str] = Field(default_factory=list)
    # "old → new": a file moved or renamed in the folder, its bytes unchanged; its document follows.
    renamed: list[str] = Field(default_factory=list)
    deleted: list[str] = Field(default_factory=list)
    # Gone from the folder, their documents kept: the run was not asked to delete.
    missing: list[str] = Field(default_factory=list)
    unchanged: int = 0
    failed: list[SyncFailure] = Field(default_factory=list)
    hashed: int = 0  # files read to hash them: new ones and those whose size or time changed
    job_id: int | None = None  # the ingest job of the new and changed files, if there were any

    def line(self) -> str:
        text = (
            f"{len(self.added)} added, {len(self.replaced)} replaced, {len(self.deleted)} deleted, "
            f"{self.unchanged} unchanged, {len(self.failed)} failed"
        )
        if self.renamed:
            text += f"; {len(self.renamed)} moved or renamed"
        if self.missing:
            text += f"; {len(self.missing)} gone from the folder but kept (sync with --delete to remove their documents)"
        return text


class SyncFolderInfo(BaseModel):
    collection: str
    path: str
    created_by: str
    created_at: datetime
    last_started_at: datetime | None = None
    last_finished_at: datetime | None = None
    last_summary: SyncSummary | None = None

    @property
    def unfinished(self) -> bool:
        """A run started after the last one finished: it is running, or it was stopped (the next one resumes)."""
        return self.last_started_at is not None and (
            self.last_finished_at is None or self.last_started_at > self.last_finished_at
        )


# --- which folders -----------------------------------------------------------------------


def existing_folder(folder: str | Path) -> Path:
    """The folder, symbolic links resolved; a clear error when it is no readable folder."""
    text = str(folder).strip()
    if not text:
        raise ValueError("give the folder to sync")
    try:
        resolved = Path(text).expanduser().resolve(strict=True)
    except (OSError, RuntimeError):
        raise ValueError(f"the folder {text} does not exist") from None
    if not resolved.is_dir():
        raise ValueError(f"{text} is a file, not a folder")
    if not os.access(resolved, os.R_OK | os.X_OK):
        raise ValueError(f"the folder {text} cannot be read by the server's user")
    return resolved


def _within(path: Path, roots: list[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def allowed_folder(folder: str | Path, roots: list[Path]) -> Path:
    """`folder` if it lies under one of `roots`, both as written and with links resolved.
    The written form is checked before the disk is looked at, so a refusal says nothing about
    whether a path outside the roots exists."""
    text = str(folder).strip()
    if not roots:
        raise OutsideSyncRoots(
            "this server lets the console sync no folder: MMKB_SYNC_ROOTS is not set (ask its operator to set "
            "it to the shared folders the console may use), or run `kb sync` at the server"
        )
    allowed = ", ".join(str(root) for root in roots)
    if not text or not Path(text).expanduser().is_absolute():
        raise ValueError(f"give the folder as an absolute path on the server, under {allowed}")
    written = Path(os.path.normpath(Path(text).expanduser()))
    if not _within(written, [Path(os.path.normpath(root)) for root in roots]):
        raise OutsideSyncRoots(f"{text} is not under the folders this server may sync (MMKB_SYNC_ROOTS: {allowed})")
    resolved = existing_folder(written)
    real_roots = [Path(root).resolve() for root in roots]
    if not _within(resolved, real_roots):
        raise OutsideSyncRoots(
            f"{text} leads outside the folders this server may sync (MMKB_SYNC_ROOTS: {allowed}) through a symbolic link"
        )
    return resolved


# --- what is in the folder -----------------------------------------------------------------


@dataclass(frozen=True)
class FoundFile:
    name: str  # its path inside the folder: the document's name
    path: Path
    size: int
    mtime_ns: int


def scan(root: Path) -> tuple[list[FoundFile], list[SyncFailure]]:
    """Every file to mirror under `root`, by name; and those that cannot be (unreadable, a link
    leading outside the folder, a name too long or clashing once cleaned). Linked folders are
    not entered: a folder would otherwise be reachable twice, or from outside the tree."""
    found: dict[str, FoundFile] = {}
    failures: list[SyncFailure] = []

    def unreadable(exc: OSError) -> None:
        where = Path(exc.filename or root)
        name = safe_relative_name(where.relative_to(root).as_posix()) if where != root else str(root)
        failures.append(SyncFailure(file=name, error=f"cannot read the folder: {exc.strerror}"))

    for directory, subfolders, files in os.walk(root, onerror=unreadable):
        subfolders[:] = sorted(d for d in subfolders if not ignored(d))
        for filename in sorted(files):
            if ignored(filename):
                continue
            path = Path(directory) / filename
            name = safe_relative_name(path.relative_to(root).as_posix())
            try:
                info = path.stat()  # a link's target
                if path.is_symlink() and not _within(path.resolve(), [root]):
                    failures.append(SyncFailure(file=name, error="a link to a file outside the synced folder: not synced"))
                    continue
            except FileNotFoundError:
                if path.is_symlink():
                    failures.append(SyncFailure(file=name, error="a link to a file that does not exist"))
                continue  # removed since the folder was listed
            except OSError as exc:
                failures.append(SyncFailure(file=name, error=f"cannot read the file: {exc.strerror}"))
                continue
            if not stat.S_ISREG(info.st_mode):
                continue  # sockets, pipes, devices
            if len(path.relative_to(root).as_posix()) > MAX_NAME:
                failures.append(SyncFailure(file=name, error=f"its path in the folder is longer than {MAX_NAME} characters"))
            elif name in found:
                failures.append(
                    SyncFailure(file=name, error=f"its name, cleaned of control characters, is that of {found[name].path}")
                )
            else:
                found[name] = FoundFile(name, path, info.st_size, info.st_mtime_ns)
    return sorted(found.values(), key=lambda f: f.name), failures


# --- what the last run saw -------------------------------------------------------------------


@dataclass(frozen=True)
class _Seen:
    """A row of sync_files; sha256 "" = never ingested (it failed), so it is tried again."""

    name: str
    size: int
    mtime_ns: int
    sha256: str
    document_id: int | None


def register(database: Database, collection: Collection, folder: Path, username: str) -> None:
    """Make `folder` the one a collection mirrors. A different folder than before keeps the
    names the collection knows (a file of the same name is the same document), but every
    file is hashed once: the old folder's times say nothing about the new one's files."""
    with database.session() as session:
        row = session.scalar(select(SyncFolder).where(SyncFolder.collection_id == collection.id))
        if row is None:
            session.add(SyncFolder(collection_id=collection.id, path=str(folder), created_by=username))
        elif row.path != str(folder):
            row.path, row.created_by, row.created_at = str(folder), username, utcnow()
            session.execute(update(SyncFile).where(SyncFile.folder_id == row.id).values(mtime_ns=-1))


def folder_info(database: Database, collection: Collection) -> SyncFolderInfo | None:
    with database.session() as session:
        row = session.scalar(select(SyncFolder).where(SyncFolder.collection_id == collection.id))
    if row is None:
        return None
    return SyncFolderInfo(
        collection=collection.name,
        path=row.path,
        created_by=row.created_by,
        created_at=row.created_at,
        last_started_at=row.last_started_at,
        last_finished_at=row.last_finished_at,
        last_summary=SyncSummary.model_validate_json(row.last_summary) if row.last_summary else None,
    )


@contextmanager
def _one_at_a_time(database: Database, collection: Collection) -> Iterator[None]:
    """A lock in the database while a run works: a second run, from this machine or another
    replica (a console click during a `kb sync --watch`), is refused, and a killed run's lock
    goes with its process."""
    try:
        with database.locks.hold(f"folder-sync:{collection.id}", timeout_s=0):
            yield
    except Timeout:
        raise SyncBusy(f"a sync of collection {collection.name} is running already; try again when it has finished") from None


# --- a run -------------------------------------------------------------------------------------


def run_sync(
    kb: SyncTarget, user: User, collection: Collection, delete: bool = False, progress: SyncProgress | None = None
) -> SyncSummary:
    """Mirror the collection's registered folder once; permissions are the caller's (the service)."""
    with _one_at_a_time(kb.database, collection):
        return _Run(kb, user, collection, delete, progress or (lambda *_: None)).run()


class _Run:
    def __init__(self, kb: SyncTarget, user: User, collection: Collection, delete: bool, progress: SyncProgress) -> None:
        self.kb, self.user, self.collection, self.delete, self.progress = kb, user, collection, delete, progress
        self.state: dict[str, _Seen] = {}  # rows to write: files seen present this run
        self.orphans: dict[int, str] = {}  # document id -> name: old versions left behind by a change
        self.unchanged: set[str] = set()  # the files counted unchanged

    def run(self) -> SyncSummary:
        database = self.kb.database
        with database.session() as session:
            row = session.scalar(select(SyncFolder).where(SyncFolder.collection_id == self.collection.id))
            if row is None:
                raise ValueError(f"collection {self.collection.name} has no folder to sync yet; register one first")
            root = existing_folder(row.path)
            self.folder_id = row.id
            row.last_started_at = utcnow()
            self.summary = SyncSummary(collection=self.collection.name, folder=str(root), started_at=row.last_started_at)
            # Plain rows, not ORM objects: a big tree has a row per file.
            self.seen = {
                relpath: _Seen(relpath, size, mtime_ns, sha, document_id)
                for relpath, size, mtime_ns, sha, document_id in session.execute(
                    select(SyncFile.relpath, SyncFile.size_bytes, SyncFile.mtime_ns, SyncFile.sha256, SyncFile.document_id).where(
                        SyncFile.folder_id == row.id
                    )
                )
            }
            self.documents = {
                document_id: (status, error)
                for document_id, status, error in session.execute(
                    select(Document.id, Document.status, Document.error).where(Document.collection_id == self.collection.id)
                )
            }
        self.scanned_ns = time.time_ns()
        found, unreadable = scan(root)
        self.summary.failed.extend(unreadable)
        present = {f.name for f in found} | {f.file for f in unreadable}

        to_hash = []
        for file in found:
            seen = self.seen.get(file.name)
            same = seen is not None and seen.mtime_ns != -1 and (seen.size, seen.mtime_ns) == (file.size, file.mtime_ns)
            status, error = (
                self.documents.get(seen.document_id, (None, None)) if seen and seen.document_id is not None else (None, None)
            )
            if same and status == DocumentStatus.ready:
                self._unchanged(file.name)
            elif same and seen is not None and status == DocumentStatus.failed and seen.sha256:
                # The same bytes would fail the same way: tried again once the file changes (or is touched).
                self.summary.failed.append(SyncFailure(file=file.name, error=f"{error} (unchanged since it failed)"))
            else:
                to_hash.append(file)
        to_ingest = self._hash(to_hash)
        replaced_now: set[int] = set()
        for attempt in range(2):
            replaced_now |= self._ingest(to_ingest)
            # A replacement removes every older document of its name; if one of them also held the
            # bytes of another, unchanged file (two files alike), that file is ingested again now.
            ingested = {f.name for f, _ in to_ingest}
            lost = [
                f
                for f in found
                if f.name not in ingested
                and (self.state.get(f.name) or self.seen.get(f.name) or _NONE).document_id in replaced_now
            ]
            if not lost or attempt:
                break
            self.summary.unchanged -= len(lost)  # counted so above
            self.unchanged -= {f.name for f in lost}
            to_ingest = self._hash(lost, count=False)
        self._finish(found, present)
        return self.summary

    def _unchanged(self, name: str) -> None:
        self.summary.unchanged += 1
        self.unchanged.add(name)

    def _ready(self, seen: _Seen) -> bool:
        return self._was_ready(seen.document_id)

    def _was_ready(self, document_id: int | None) -> bool:
        """Ready when this run began."""
        return document_id is not None and self.documents.get(document_id, (None,))[0] == DocumentStatus.ready

    def _trusted(self, mtime_ns: int) -> int:
        return -1 if mtime_ns >= self.scanned_ns - RACY_NS else mtime_ns

    def _hash(self, files: list[FoundFile], count: bool = True) -> list[tuple[FoundFile, str]]:
        """The files whose bytes must be ingested, with their hash; the others are unchanged."""
        changed = []
        for done, file in enumerate(files):
            self.progress("hash", done, len(files), file.name)
            if is_plain_zip(file.path):
                # The ingest would unpack it into documents named after its entries, which the
                # folder does not hold: the mirror could not tell them apart from its files.
                self.summary.failed.append(
                    SyncFailure(
                        file=file.name,
                        error="a zip archive: folder sync does not unpack archives; unpack it into the folder instead",
                    )
                )
                continue
            try:
                sha = _sha256(file.path)
            except OSError as exc:
                self.summary.failed.append(SyncFailure(file=file.name, error=f"cannot read the file: {exc.strerror}"))
                continue
            self.summary.hashed += 1
            seen = self.seen.get(file.name)
            if count and seen and seen.sha256 == sha and self._ready(seen):
                self._unchanged(file.name)
                self.state[file.name] = replace(seen, size=file.size, mtime_ns=self._trusted(file.mtime_ns))
            else:
                changed.append((file, sha))
        self.progress("hash", len(files), len(files), "")
        return changed

    def _ingest(self, files: list[tuple[FoundFile, str]]) -> set[int]:
        """Ingest `files` as one batch; the ids of the documents their replacements removed."""
        if not files:
            return set()
        uploads = [Upload(file.path, file.name, keep_folders=True) for file, _ in files]
        report = self.kb.ingest(
            self.user,
            self.collection.name,
            uploads=uploads,
            progress=lambda done, total, name: self.progress("ingest", done, total, name),
        )
        self.summary.job_id = report.job_id
        results: dict[str, FileResult] = {r.filename: r for r in report.files}
        ids = [r.document_id for r in report.files if r.document_id is not None]
        with self.kb.database.session() as session:
            shas = dict(session.execute(select(Document.id, Document.sha256).where(Document.id.in_(ids))).all())
        replaced: set[int] = set()
        for file, sha in files:
            result = results.get(file.name)
            seen = self.seen.get(file.name)
            if result is None or result.outcome == FileOutcome.failed:
                error = result.error if result is not None and result.error else "not ingested"
                self.summary.failed.append(SyncFailure(file=file.name, error=error))
                # Remembered with its failed document, so that the same bytes are not read again
                # (a changed file's old version stays ready under the same name meanwhile); with
                # no document (unreadable) the hash is left empty, so it is tried every time.
                document_id = result.document_id if result is not None else None
                self.state[file.name] = _Seen(
                    file.name, file.size, self._trusted(file.mtime_ns), sha if document_id else "", document_id
                )
                continue
            replaced |= set(result.replaced_document_ids)
            document_id = result.document_id
            stored_sha = shas.get(document_id, sha) if document_id is not None else sha
            # The bytes ingested may be newer than those hashed: then their time is not trusted.
            mtime_ns = self._trusted(file.mtime_ns) if stored_sha == sha else -1
            self.state[file.name] = _Seen(file.name, file.size, mtime_ns, stored_sha, document_id)
            old = seen.document_id if seen else None
            if old is not None and old != document_id:
                self.orphans[old] = file.name
            # Replaced: a ready version went (a failed one never was in the collection).
            had_version = any(self._was_ready(i) for i in [*result.replaced_document_ids, old] if i != document_id)
            if result.outcome == FileOutcome.ingested:
                (self.summary.replaced if had_version else self.summary.added).append(file.name)
            elif had_version:
                self.summary.replaced.append(file.name)  # now the bytes of a document the collection had already
            else:
                self._unchanged(file.name)  # in the collection already (a run stopped after ingesting it, an upload, a move)
        return replaced

    def _finish(self, found: list[FoundFile], present: set[str]) -> None:
        """One transaction: the rows of what was seen, the documents of vanished files (with
        `delete`) and old versions nobody holds any more; then their vectors and files go."""
        vanished = [seen for name, seen in self.seen.items() if name not in present]
        doomed: set[str] = set()  # names whose rows go
        now = {name: seen for name in present if (seen := self.state.get(name) or self.seen.get(name)) is not None}
        held_by_present = {seen.document_id for seen in now.values() if seen.document_id is not None}
        moved: set[int] = set()  # documents of vanished files that a present file has the bytes of
        delete_named: set[str] = set()
        if vanished and self.delete and not found and not self.summary.failed:
            # An unmounted share looks like an empty folder: not a reason to empty a collection.
            self.summary.failed.append(
                SyncFailure(
                    file=self.summary.folder,
                    error=f"the folder is empty: the documents of its {len(vanished)} earlier files were not deleted (an "
                    "unmounted share looks the same); delete them with `kb delete` or in the console if that is meant",
                )
            )
            self.summary.missing = sorted(s.name for s in vanished)
        else:
            for seen in vanished:
                if seen.document_id is not None and seen.document_id in held_by_present:
                    doomed.add(seen.name)  # moved or renamed: its document lives on as the file that has its bytes now
                    moved.add(seen.document_id)
                elif self.delete:
                    doomed.add(seen.name)
                    delete_named.add(seen.name)
                elif seen.document_id is None or seen.document_id not in self.documents:
                    doomed.add(seen.name)  # its document was deleted meanwhile: nothing is kept
                else:
                    self.summary.missing.append(seen.name)
        with self.kb.database.session() as session:
            rows: dict[str, SyncFile] = {}  # only those to change: an unchanged tree loads none
            for names in _batches(sorted(doomed | set(self.state))):
                rows.update(
                    (r.relpath, r)
                    for r in session.scalars(
                        select(SyncFile).where(SyncFile.folder_id == self.folder_id, SyncFile.relpath.in_(names))
                    )
                )
            kept = {name: seen for name, seen in self.seen.items() if name not in doomed} | self.state
            held = {seen.document_id for seen in kept.values() if seen.document_id is not None}
            documents: dict[int, Document] = {}
            document: Document | None
            for names in _batches(sorted(delete_named)):
                for document in session.scalars(
                    select(Document).where(Document.collection_id == self.collection.id, Document.filename.in_(names))
                ):
                    documents[document.id] = document
            for document_id, name in self.orphans.items():
                document = session.get(Document, document_id)
                # Only a version this folder made (named as its file): an upload of the same bytes stays.
                if document is not None and document.filename == name:
                    documents[document.id] = document
            gone = [d for d in documents.values() if d.id not in held]
            self.summary.deleted = sorted({d.filename for d in gone} & delete_named)
            pending = remove_in_session(session, gone) if gone else None
            self._follow_moves(session, present, now, moved, {d.id for d in gone})
            for name in doomed:
                if name in rows:
                    session.delete(rows[name])
            for name, seen in self.state.items():
                row = rows.get(name) or SyncFile(folder_id=self.folder_id, relpath=name)
                row.size_bytes, row.mtime_ns = seen.size, seen.mtime_ns
                row.sha256, row.document_id = seen.sha256, seen.document_id
                session.add(row)
            folder = session.get(SyncFolder, self.folder_id)
            assert folder is not None  # this run's folder row, read when it began
            self.summary.finished_at = utcnow()
            for listed in (self.summary.added, self.summary.replaced, self.summary.renamed, self.summary.missing):
                listed.sort()
            folder.last_finished_at = self.summary.finished_at
            folder.last_summary = self.summary.model_dump_json()
        if pending is not None:
            finish_removal(self.kb.database.session, self.kb.indexes, pending)

    def _follow_moves(self, session, present: set[str], now: dict[str, _Seen], moved: set[int], gone: set[int]) -> None:
        """A file found by its hash in a document named as no file of the folder is that file
        moved or renamed (or an upload of the same bytes): the document takes the file's name,
        without being read again. `moved`: documents of vanished files that present files hold."""
        held = {
            seen.document_id: name
            for name, seen in sorted(now.items())
            if seen.document_id is not None and (name in self.state or seen.document_id in moved)
        }
        for ids in _batches(sorted(held)):
            for document in session.scalars(select(Document).where(Document.id.in_(ids))):
                name = held[document.id]
                if (
                    document.id not in gone
                    and document.status == DocumentStatus.ready
                    and document.filename != name
                    and document.filename not in present
                ):
                    self.summary.renamed.append(f"{document.filename} → {name}")
                    document.filename = name
                    if name in self.unchanged:
                        self.summary.unchanged -= 1


_NONE = _Seen("", 0, -1, "", None)


_T = TypeVar("_T")


def _batches(names: list[_T], size: int = 500) -> Iterator[list[_T]]:
    for start in range(0, len(names), size):
        yield names[start : start + size]
