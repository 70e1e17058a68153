"""Can a table's answer be read from the chunk that holds it? One row per table question.

    python benchmarks/table_text.py [--data DIR] [--code DIR] [--show]

Parses each PDF of a QA set (`DIR/docs/*.pdf`, `DIR/qa.jsonl`, default: the public-records
set under /work/shared/eval/answers/us-public-records) with the project's loader, chunks it
as ingestion does (table pieces up to the MiniLM window, 248 tokens, approximate counter;
rows are never cut, so the counter does not change which rows share a chunk) and checks,
for each question below, two things:

- together: some chunk holds the gold answer and the row's label(s);
- readable: some line of a chunk holds the row's label(s) as whole cells and the gold
  answer as a whole cell of the expected column: "Totals: 146,982" in the line whose
  "State / Territory" cell is "Texas", or, in Markdown rows, the same cells under their
  header cells. Values run together in one cell ("63,670 146,982 21,772"), a row label cell
  holding several rows' labels, or a cell without its column fail.

--code DIR imports `ingest` from DIR instead of this checkout, to measure an older version:
`git archive HEAD ingest | tar -x -C /tmp/before && python benchmarks/table_text.py --code /tmp/before`.
--show prints the chunk that answers each question (or the best candidate).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path("/work/shared/eval/answers/us-public-records")

# id -> (cells that must share the answer's line: its row label(s); the answer's column,
# None for an answer in page text). A table whose row is one row of values has no label.
QUESTIONS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "nics01": (("Texas",), "Totals"),
    "nics02": (("Totals",), "Totals"),
    "nics03": (("Texas",), "Handgun"),
    "nics04": (("Totals",), "Permit"),
    "nics05": (("Wyoming",), "Totals"),
    "nics06": (("do not represent the number of firearms sold",), None),  # a note under the table
    "sen01": (("DHAW20190031",), "AMOUNT ($)"),
    "sen02": (("DISTRICT DIRECTOR", "37,499.96"), "PAYEE NAME"),
    "sen03": (("DHAW20190001",), "AMOUNT ($)"),
    "sen04": (("DHAW20190031",), "PAYEE NAME"),
    "warn01": (("Maxim Integrated Product", "San Jose"), "No. Of"),
    "warn02": (("McGraw-Hill Education", "Monterey"), "No. Of"),
    "warn03": (("Leidos", "72"), "City"),
    "fr10": (("AFM revisions",), "Cost on U.S. operators"),
    "fr11": (("AFM revisions",), "Labor cost"),
    "fr12": (("AOA sensor system test",), "Labor cost"),
    "fr13": (("Stabilizer wiring change",), "Cost on U.S. operators"),
    "zh01": ((), "路段监控通信分中心"),
    "zh04": (("高速公路", "八"), "用地指标基准值"),
    "zh06": ((), "桥隧监控通信站"),
    "xl02": (("Texas",), "Totals"),
}


def squeeze(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def split_cells(line: str) -> list[str]:
    """A table line's cells: split at unescaped pipes, Markdown's outer pipes dropped."""
    cells = [c.replace("\\|", "|").strip() for c in re.split(r"(?<!\\)\|", line)]
    if line.strip().startswith("|"):
        cells = cells[1:]
    if line.strip().endswith("|") and not line.strip().endswith("\\|"):
        cells = cells[:-1]
    return cells


def clean(cell: str) -> str:
    """A cell's value as a reader takes it: no dot leaders, no final full stop."""
    return re.sub(r"\s*\.{2,}\s*", " ", squeeze(cell)).strip().rstrip(".").strip()


def same_value(cell: str, gold: str) -> bool:
    """The cell is the answer: equal to it, or, for an answer in words ("$85 per hour"),
    holding it once ("1 work-hour × $85 per hour = $85")."""
    cell, gold = clean(cell), clean(gold)
    return cell == gold or (bool(re.search(r"[^\W\d]", gold)) and cell.count(gold) == 1)


def readable(chunk: str, labels: tuple[str, ...], gold: str, column: str) -> bool:
    lines = chunk.split("\n")
    header: list[str] = []
    for index, line in enumerate(lines):
        if line.startswith("| ") and index + 1 < len(lines) and lines[index + 1].startswith("| ---"):
            header = split_cells(line)
            break
    for line in lines:
        cells = split_cells(line) if "|" in line else [line]
        named = []  # (column name or "", value) per cell
        for position, cell in enumerate(cells):
            name, sep, value = cell.partition(": ")
            if sep and (not header or position >= len(header)):
                named.append((name, value))
            else:
                named.append((header[position] if position < len(header) else "", cell))
        values = [clean(value) for _, value in named]
        if not all(clean(label) in values for label in labels):
            continue
        if any(squeeze(name) == squeeze(column) and same_value(value, gold) for name, value in named):
            return True
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--code", type=Path, default=ROOT, help="directory holding the `ingest` package to measure")
    parser.add_argument("--table-tokens", type=int, default=248)
    parser.add_argument("--show", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(args.code.resolve()))
    from ingest.chunking import approximate_token_counter, chunk_file
    from ingest.loaders import PDF_MIME, parse_file

    questions = [json.loads(line) for line in (args.data / "qa.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    questions = [q for q in questions if q["id"] in QUESTIONS]
    chunks_by_file: dict[str, list] = {}
    for name in sorted({q["file"] for q in questions}):
        parsed = parse_file(args.data / "docs" / name, PDF_MIME)
        chunks_by_file[name] = chunk_file(parsed, approximate_token_counter, 200, 40, args.table_tokens)
    print(f"code: {args.code}")
    print("| id | answer | row label(s) | column | together | readable | chunk kind |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    together_count = readable_count = 0
    for q in questions:
        labels, column = QUESTIONS[q["id"]]
        gold = q["answer"] if column is not None else labels[0]
        chunks = chunks_by_file[q["file"]]
        together_labels = labels or (column,)
        holding = [
            c
            for c in chunks
            if squeeze(gold).rstrip(".") in squeeze(c.text)
            and all(squeeze(label) in squeeze(c.text) for label in together_labels)
        ]
        together = bool(holding)
        if column is None:
            good = holding  # a page-text answer: the sentence is the evidence
        else:
            good = [c for c in holding if readable(c.text, labels, gold, column)]
        together_count += together
        readable_count += bool(good)
        kind = ("table" if (good or holding)[0].char_start is None else "text") if (good or holding) else "-"
        print(
            f"| {q['id']} | {q['answer']} | {' + '.join(labels) or '-'} | {column or '(page text)'} | "
            f"{'yes' if together else 'no'} | {'yes' if good else 'no'} | {kind} |"
        )
        if args.show and (good or holding):
            print("    " + (good or holding)[0].text.replace("\n", "\n    ")[:1500])
    print(f"\ntogether: {together_count}/{len(questions)}   readable: {readable_count}/{len(questions)}")


if __name__ == "__main__":
    main()
