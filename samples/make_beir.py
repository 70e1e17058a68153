"""A tiny BEIR-format set from the sample collection: corpus = the pages of the sample PDFs
(id "<file>#p<page>"), queries and qrels = samples/questions.json's answerable questions.

    python samples/make_beir.py OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pymupdf

HERE = Path(__file__).resolve().parent


def page_id(filename: str, page: int) -> str:
    return f"{filename}#p{page}"


def write_beir(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "qrels").mkdir(exist_ok=True)
    with (out / "corpus.jsonl").open("w", encoding="utf-8") as corpus:
        for pdf in sorted((HERE / "collection").glob("*.pdf")):
            with pymupdf.open(pdf) as document:
                for number, page in enumerate(document, start=1):
                    row = {"_id": page_id(pdf.name, number), "title": pdf.stem.replace("-", " "), "text": page.get_text()}
                    corpus.write(json.dumps(row, ensure_ascii=False) + "\n")
    questions = [q for q in json.loads((HERE / "questions.json").read_text()) if q["file"]]
    with (out / "queries.jsonl").open("w", encoding="utf-8") as queries:
        for i, q in enumerate(questions, start=1):
            queries.write(json.dumps({"_id": f"q{i}", "text": q["question"]}, ensure_ascii=False) + "\n")
    with (out / "qrels" / "test.tsv").open("w", encoding="utf-8") as qrels:
        qrels.write("query-id\tcorpus-id\tscore\n")
        for i, q in enumerate(questions, start=1):
            qrels.write(f"q{i}\t{page_id(q['file'], q['page'])}\t1\n")
    return out


if __name__ == "__main__":
    print(write_beir(Path(sys.argv[1])))
