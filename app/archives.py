"""Zip archives in an upload: expanded into numbered staging files, each then ingested alone.

Safety, because an archive comes from whoever uploads it:
- an entry's name never becomes a path: bytes go to `<staging>/<n>-<m>` and the name is
  only the display name (ingestion strips its directories), so `../../x.pdf` cannot escape;
- at most `max_files` entries and `max_total_bytes` unpacked, checked on the sizes the zip
  directory declares *before a byte is written* (a zip bomb costs no disk), and again on the
  bytes actually inflated, since declared sizes can lie (zipfile also stops an entry at its
  declared size and fails its CRC check);
- an entry declared over the per-file cap is not unpacked: it fails alone, with its size;
- encrypted entries, links and nested archives are not expanded (a nested zip is ingested
  as a file and refused as an unsupported type).
An archive that breaks a limit or cannot be read fails as a whole, with the reason, nothing
of it stays in staging, and the other files of the upload go on.
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


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _too_big(display_name: str, size: int, limit: int, declared: bool) -> ArchiveError:
    how = "declares that it unpacks to" if declared else "unpacks to more than"
    return ArchiveError(
        f"{display_name}: the archive {how} {_mb(size)}, over the limit of {_mb(limit)} (MMKB_ZIP_MAX_TOTAL_MB); "
        "nothing of it was kept: split it or raise the limit"
    )


def expand_zip(
    archive: Path, display_name: str, staging: Path, limits: ArchiveLimits, prefix: str = "0"
) -> tuple[list[Upload], list[FileResult]]:
    """The entries to ingest, and those refused alone (over the per-file cap)."""
    written_files: list[Path] = []
    try:
        with zipfile.ZipFile(archive) as zipped:
            entries = [info for info in zipped.infolist() if not _skipped(info)]
            if len(entries) > limits.max_files:
                raise ArchiveError(
                    f"{display_name}: the archive holds {len(entries)} files, over the limit of {limits.max_files} (MMKB_ZIP_MAX_FILES)"
                )
            for info in entries:
                if info.flag_bits & 0x1:
                    raise ArchiveError(f"{display_name}: {safe_filename(info.filename)} is encrypted; upload it unencrypted")
            declared = sum(info.file_size for info in entries)
            if declared > limits.max_total_bytes:
                raise _too_big(display_name, declared, limits.max_total_bytes, declared=True)
            uploads: list[Upload] = []
            refused: list[FileResult] = []
            inflated = 0
            for number, info in enumerate(entries):
                if info.file_size > limits.max_entry_bytes:
                    refused.append(
                        FileResult(
                            filename=safe_filename(info.filename),
                            outcome=FileOutcome.failed,
                            error=f"the file is {_mb(info.file_size)} once unpacked from {display_name}, over the "
                            f"{_mb(limits.max_entry_bytes)} limit (MMKB_MAX_UPLOAD_MB); it was not unpacked",
                        )
                    )
                    continue
                target = staging / f"{prefix}-{number:05d}"
                written_files.append(target)
                written = 0
                with zipped.open(info) as source, target.open("wb") as out:
                    while block := source.read(1 << 20):
                        inflated += len(block)
                        written += len(block)
                        # Checked before the block is written: the cap is never exceeded on disk.
                        if inflated > limits.max_total_bytes:
                            raise _too_big(display_name, inflated, limits.max_total_bytes, declared=False)
                        if written > info.file_size:
                            raise ArchiveError(
                                f"{display_name}: {safe_filename(info.filename)} unpacks to more than its declared size"
                            )
                        out.write(block)
                uploads.append(Upload(target, info.filename))
            return uploads, refused
    except ArchiveError:
        _remove(written_files)
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError) as exc:
        _remove(written_files)
        raise ArchiveError(f"{display_name}: the zip archive cannot be read ({exc})") from None


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def expand_archives(uploads: list[Upload], staging: Path, limits: ArchiveLimits) -> tuple[list[Upload], list[FileResult]]:
    """Every plain zip among `uploads` replaced by its entries; refused archives and entries as failed results."""
    expanded: list[Upload] = []
    failures: list[FileResult] = []
    for position, upload in enumerate(uploads):
        if not is_plain_zip(upload.path):
            expanded.append(upload)
            continue
        try:
            entries, refused = expand_zip(upload.path, upload.display_name, staging, limits, prefix=str(position))
            expanded.extend(entries)
            failures.extend(refused)
        except ArchiveError as exc:
            failures.append(FileResult(filename=safe_filename(upload.display_name), outcome=FileOutcome.failed, error=str(exc)))
    return expanded, failures
