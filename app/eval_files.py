"""Reading evaluation files (JSON lists or JSON Lines), shared by `kb eval answers`
(app.answer_eval) and the collections' own evaluation sets (app.collection_eval)."""

from __future__ import annotations

import json
from pathlib import Path


def json_rows(path: Path, error: type[Exception]) -> list[tuple[str, object, int]]:
    """The rows of a JSON list or JSON Lines file, each with where it is ("item 3", "line 7")
    and its number; a file that cannot be read or parsed raises `error` saying where."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read: {exc}") from exc
    if text.lstrip().startswith("["):
        try:
            return [(f"item {n}", row, n) for n, row in enumerate(json.loads(text), start=1)]
        except json.JSONDecodeError as exc:
            raise error(f"{path}: not valid JSON: {exc}") from exc
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((f"line {number}", json.loads(line), number))
        except json.JSONDecodeError as exc:
            raise error(f"{path} line {number}: not valid JSON: {exc}") from exc
    return rows
