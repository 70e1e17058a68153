"""Zip archives in an upload: expanded into numbered staging files, each then ingested alone.

Safety, because an archive comes from whoever uploads it:
- an entry's name never becomes a path: bytes go to `<staging>/<n>-<m>` and the name is
  only the display name (ingestion strips its directories), so `../../x.pdf` cannot escape;
- at most `max_files` entries and `max_total_bytes` of *actually inflated* bytes (counted
  while reading, since the sizes in the zip directory can lie): a zip bomb stops at the limit;
- each entry is copied up to one byte past the per-file cap, so ingestion refuses an
  oversized entry with its usual message and the rest of it is never written;
- encrypted entries, links and nested archives are not expanded (a nested zip is ingested
  as a file and refused as an unsupported type).
An archive that breaks a limit or cannot be read fails as a whole, with the reason, and
the other files of the upload go on.
"""

from __future__ import annotations

import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

from app.ingestion import Upload
from app.schemas import FileOutcome, FileResult
from ingest.loaders import safe_filename, sniff_mime

ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class ArchiveLimits:
    max_files: int
    max_total_bytes: int
    max_entry_bytes: int


class ArchiveError(ValueError):
    """An archive that is refused as a whole; the message names the reason."""


def is_plain_zip(path: Path) -> bool:
    """A zip archive that is not an Office document (DOCX and PPTX are zips too)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(2048)
    except OSError:
        return False
    return head.startswith(ZIP_MAGIC) and sniff_mime(head, path) is None


def _skipped(info: zipfile.ZipInfo) -> bool:
    name = info.filename.replace("\\", "/")
    is_link = stat.S_ISLNK(info.external_attr >> 16)
    parts = name.split("/")
    hidden = parts[-1].startswith(".") or "__MACOSX" in parts  # dotfiles and macOS resource forks
    return info.is_dir() or is_link or hidden


def expand_zip(archive: Path, display_name: str, staging: Path, limits: ArchiveLimits, prefix: str = "0") -> list[Upload]:
    try:
        with zipfile.ZipFile(archive) as zipped:
            entries = [info for info in zipped.infolist() if not _skipped(info)]
            if len(entries) > limits.max_files:
                raise ArchiveError(
                    f"{display_name}: the archive holds {len(entries)} files, over the limit of {limits.max_files} (MMKB_ZIP_MAX_FILES)"
                )
            uploads: list[Upload] = []
            inflated = 0
            for number, info in enumerate(entries):
                if info.flag_bits & 0x1:
                    raise ArchiveError(f"{display_name}: {safe_filename(info.filename)} is encrypted; upload it unencrypted")
                target = staging / f"{prefix}-{number:05d}"
                written = 0
                with zipped.open(info) as source, target.open("wb") as out:
                    while block := source.read(1 << 20):
                        inflated += len(block)
                        if inflated > limits.max_total_bytes:
                            raise ArchiveError(
                                f"{display_name}: the archive unpacks to more than {limits.max_total_bytes / 1e6:.0f} MB "
                                "(MMKB_ZIP_MAX_TOTAL_MB); split it or raise the limit"
                            )
                        out.write(block)
                        written += len(block)
                        if written > limits.max_entry_bytes:
                            break  # over the per-file cap: ingestion refuses it; the rest is never stored
                uploads.append(Upload(target, info.filename))
            return uploads
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError) as exc:
        raise ArchiveError(f"{display_name}: the zip archive cannot be read ({exc})") from None


def expand_archives(uploads: list[Upload], staging: Path, limits: ArchiveLimits) -> tuple[list[Upload], list[FileResult]]:
    """Every plain zip among `uploads` replaced by its entries; refused archives as failed results."""
    expanded: list[Upload] = []
    failures: list[FileResult] = []
    for position, upload in enumerate(uploads):
        if not is_plain_zip(upload.path):
            expanded.append(upload)
            continue
        try:
            expanded.extend(expand_zip(upload.path, upload.display_name, staging, limits, prefix=str(position)))
        except ArchiveError as exc:
            failures.append(FileResult(filename=safe_filename(upload.display_name), outcome=FileOutcome.failed, error=str(exc)))
    return expanded, failures
