"""Zip uploads: expanded safely into staging files (no models needed)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from app.archives import ArchiveLimits, expand_archives, is_plain_zip
from app.ingestion import Upload

LIMITS = ArchiveLimits(max_files=10, max_total_bytes=5_000_000, max_entry_bytes=1_000_000)


def make_zip(path: Path, entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def test_entries_become_uploads_named_by_entry_and_written_only_inside_staging(tmp_path):
    staging = tmp_path / "staging"
    staging.mkdir()
    archive = make_zip(
        tmp_path / "bundle.zip",
        {
            "guide.md": b"# Guide\nUse the blue valve.",
            "sub/dir/notes.txt": b"plain notes",
            "../../escape.txt": b"trying to leave the staging folder",
            "/etc/absolute.txt": b"absolute path entry",
            "__MACOSX/._guide.md": b"resource fork",
            ".hidden": b"dotfile",
        },
    )
    plain = tmp_path / "loose.txt"
    plain.write_text("not an archive")
    uploads, refused = expand_archives([Upload(archive, "bundle.zip"), Upload(plain, "loose.txt")], staging, LIMITS)
    assert refused == []
    assert [u.display_name for u in uploads] == [
        "guide.md",
        "sub/dir/notes.txt",
        "../../escape.txt",
        "/etc/absolute.txt",
        "loose.txt",
    ]
    # every expanded entry lives directly in staging, whatever its name said
    assert all(u.path.parent == staging for u in uploads[:4])
    assert uploads[2].path.read_bytes() == b"trying to leave the staging folder"
    assert not (tmp_path / "escape.txt").exists() and not Path("/etc/absolute.txt").exists()
    assert {p.name for p in tmp_path.iterdir()} == {"staging", "bundle.zip", "loose.txt"}
    assert len(list(staging.iterdir())) == 4


def test_office_files_are_not_mistaken_for_archives(tmp_path):
    docx = make_zip(tmp_path / "a.docx", {"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>"})
    assert not is_plain_zip(docx)
    assert is_plain_zip(make_zip(tmp_path / "b.zip", {"x.txt": b"x"}))


def test_too_many_entries_refuses_the_whole_archive_with_the_setting_named(tmp_path):
    archive = make_zip(tmp_path / "many.zip", {f"f{i}.txt": b"x" for i in range(11)})
    uploads, refused = expand_archives([Upload(archive, "many.zip")], tmp_path, LIMITS)
    assert uploads == []
    assert refused[0].filename == "many.zip" and "11 files" in refused[0].error and "MMKB_ZIP_MAX_FILES" in refused[0].error


def test_a_zip_bomb_stops_at_the_inflated_size_limit(tmp_path):
    # 40 MB of zeros compress to ~40 KB; the directory says 40 MB, but the limit is counted while inflating.
    archive = make_zip(tmp_path / "bomb.zip", {"zeros.txt": b"\0" * 40_000_000})
    assert archive.stat().st_size < 200_000
    limits = ArchiveLimits(max_files=10, max_total_bytes=2_000_000, max_entry_bytes=50_000_000)
    staging = tmp_path / "staging"
    staging.mkdir()
    uploads, refused = expand_archives([Upload(archive, "bomb.zip")], staging, limits)
    assert uploads == [] and "MMKB_ZIP_MAX_TOTAL_MB" in refused[0].error
    assert sum(p.stat().st_size for p in staging.iterdir()) <= 2_000_000


def test_an_entry_declared_over_the_per_file_cap_is_refused_alone_and_never_unpacked(tmp_path):
    archive = make_zip(tmp_path / "big.zip", {"docs/big.txt": b"a" * 3_000_000, "small.txt": b"fine"})
    staging = tmp_path / "staging"
    staging.mkdir()
    uploads, refused = expand_archives([Upload(archive, "big.zip")], staging, LIMITS)
    assert [u.display_name for u in uploads] == ["small.txt"] and uploads[0].path.read_bytes() == b"fine"
    assert refused[0].filename == "big.txt" and refused[0].outcome.value == "failed"
    assert "2.9 MB once unpacked from big.zip" in refused[0].error and "MMKB_MAX_UPLOAD_MB" in refused[0].error
    assert [p.stat().st_size for p in staging.iterdir()] == [4]


def _bytes_written() -> int:
    """Bytes this process has handed to write() so far (all files, all threads)."""
    with open("/proc/self/io") as counters:
        return next(int(line.split()[1]) for line in counters if line.startswith("wchar:"))


def test_a_zip_bomb_is_refused_before_a_byte_of_it_is_written(tmp_path):
    # ~100 KB on disk that declares, and inflates to, 100 MB: five times the limit.
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        with zipped.open("zeros.pdf", "w", force_zip64=True) as entry:
            for _ in range(100):
                entry.write(bytes(1_000_000))
    assert archive.stat().st_size < 200_000
    limits = ArchiveLimits(max_files=10, max_total_bytes=20_000_000, max_entry_bytes=200_000_000)
    staging = tmp_path / "staging"
    staging.mkdir()
    before = _bytes_written()
    uploads, refused = expand_archives([Upload(archive, "bomb.zip")], staging, limits)
    written = _bytes_written() - before
    assert written < 100_000, f"{written} bytes written for a refused archive"
    assert uploads == [] and refused[0].filename == "bomb.zip"
    assert "declares that it unpacks to 95.4 MB, over the limit of 19.1 MB (MMKB_ZIP_MAX_TOTAL_MB)" in refused[0].error
    assert list(staging.iterdir()) == []


def test_sizes_that_lie_are_caught_while_inflating_and_nothing_of_the_archive_stays(tmp_path):
    """The directory says 1 MB; the entry inflates to 10 MB. Inflating stops at the declared
    size (the CRC then fails), so the limits checked on declared sizes still hold on disk."""
    data = bytearray(make_zip(tmp_path / "ok.zip", {"liar.txt": b"\0" * 10_000_000, "honest.txt": b"fine"}).read_bytes())
    central = data.find(b"PK\x01\x02")
    data[central + 24 : central + 28] = (1_000_000).to_bytes(4, "little")  # uncompressed size
    archive = tmp_path / "liar.zip"
    archive.write_bytes(bytes(data))
    staging = tmp_path / "staging"
    staging.mkdir()
    before = _bytes_written()
    uploads, refused = expand_archives([Upload(archive, "liar.zip")], staging, LIMITS)
    written = _bytes_written() - before
    assert uploads == [] and refused[0].filename == "liar.zip" and "cannot be read" in refused[0].error
    assert written <= 1_000_000 + 100_000
    assert list(staging.iterdir()) == [], "a refused archive's entries must not stay in staging"


@pytest.mark.parametrize("damage", ["truncated", "encrypted"])
def test_damaged_or_encrypted_archives_fail_alone_with_a_reason(tmp_path, damage):
    if damage == "truncated":
        data = make_zip(tmp_path / "ok.zip", {"a.txt": b"hello " * 1000}).read_bytes()
        archive = tmp_path / "bad.zip"
        archive.write_bytes(data[: len(data) // 2])
    else:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zipped:
            zipped.writestr("secret.txt", b"secret")
        raw = bytearray(buffer.getvalue())
        # set the "encrypted" flag bit in the local header and the central directory entry
        raw[6] |= 1
        central = raw.rfind(b"PK\x01\x02")
        raw[central + 8] |= 1
        archive = tmp_path / "bad.zip"
        archive.write_bytes(bytes(raw))
    other = tmp_path / "other.txt"
    other.write_text("still ingested")
    uploads, refused = expand_archives([Upload(archive, "bad.zip"), Upload(other, "other.txt")], tmp_path, LIMITS)
    assert [u.display_name for u in uploads] == ["other.txt"]
    assert refused[0].filename == "bad.zip"
    assert ("cannot be read" in refused[0].error) if damage == "truncated" else ("encrypted" in refused[0].error)
