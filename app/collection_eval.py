"""A collection's own evaluation set: questions with the file (and page) that answers them.

The set lives in SQL (`eval_questions`) and is run by the very retrieval a question goes
through (`Answerer.rank` with the shipped options), so its scores say what users get. A
question counts as found at the rank of the first *place* (its file and page, or only its
file when no page is given) among the ranked chunks: recall@5 and MRR@10 over those places,
scored by `app.ranking_metrics.score_ranking` like `kb eval retrieval`. Every run is recorded
(`eval_runs`): on demand against the live index, and by `kb reindex` against the live index
and its candidate before the swap (app.reindex_guard).

Permissions are the service's (app.service); nothing here checks who asks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, cast

from sqlalchemy import CursorResult, delete, select

from app.db import Database
from app.eval_files import json_rows
from app.models import Collection, Document, DocumentStatus, EvalQuestion, EvalRun
from app.ranking_metrics import score_ranking
from app.schemas import EvalQuestionInfo, EvalRunInfo, EvalScores, NewEvalQuestion

CUTOFF = 5
LIVE, CANDIDATE = "live", "candidate"


class EvalSetError(ValueError):
    """A question (or a file of them) that cannot be added; the message says which and why."""


def _same_question(text: str) -> str:
    return " ".join(text.split()).casefold()


def _info(row: EvalQuestion) -> EvalQuestionInfo:
    return EvalQuestionInfo(
        id=row.id,
        question=row.question,
        file=row.expected_filename,
        page=row.expected_page,
        created_by=row.created_by,
        created_at=row.created_at,
    )


def _run_info(row: EvalRun, collection_name: str) -> EvalRunInfo:
    return EvalRunInfo(
        id=row.id,
        collection=collection_name,
        # record() is the only writer, with LIVE or CANDIDATE and a guard verdict; pydantic checks them again
        index=cast(Literal["live", "candidate"], row.index_kind),
        recall_at_5=row.recall_at_5,
        mrr_at_10=row.mrr_at_10,
        questions=row.questions,
        job_id=row.job_id,
        verdict=cast(Literal["swapped", "kept", "forced"] | None, row.verdict),
        created_at=row.created_at,
    )


def read_question_file(path: Path) -> list[NewEvalQuestion]:
    """Questions from JSON Lines or a JSON list, in the shape of `kb eval answers` sets:
    `question`, `file`, and `page` (or `pages` with one page; none: any page of the file).
    Rows without a file (questions the documents do not answer) are skipped: they have no
    place to find."""
    rows = json_rows(path, EvalSetError)
    questions = []
    for where, row, _ in rows:
        if not isinstance(row, dict):
            raise EvalSetError(f"{path} {where}: expected a JSON object with question, file and page")
        if not row.get("file"):
            continue
        pages = row.get("pages", row.get("page"))
        if isinstance(pages, list):
            if len(pages) > 1:
                raise EvalSetError(
                    f"{path} {where}: one expected page per question (got {pages}); split it into one "
                    "question per page, or give no page to accept any page of the file"
                )
            pages = pages[0] if pages else None
        try:
            questions.append(NewEvalQuestion(question=row.get("question") or "", file=str(row["file"]), page=pages))
        except ValueError as exc:
            raise EvalSetError(f"{path} {where}: {validation_message(exc)}") from None
    if not questions:
        raise EvalSetError(f"{path}: no question with a file to find in it")
    return questions


def validation_message(exc: ValueError) -> str:
    """A pydantic validation error as one line: the field and what is wrong with it."""
    errors = getattr(exc, "errors", None)
    if callable(errors) and errors():
        error = errors()[0]
        return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
    return str(exc)


class EvalSets:
    """The evaluation questions and runs of every collection, in SQL."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def questions(self, collection_id: int) -> list[EvalQuestionInfo]:
        with self.database.session() as session:
            query = select(EvalQuestion).where(EvalQuestion.collection_id == collection_id).order_by(EvalQuestion.id)
            rows = session.scalars(query)
            return [_info(row) for row in rows]

    def add(
        self, collection: Collection, items: list[NewEvalQuestion], created_by: str, skip_existing: bool = False
    ) -> list[EvalQuestionInfo]:
        """Add questions, all or none: each names a ready document of the collection and a page
        it has. A question already in the set (same words, file and page) is an error, or is
        left out with skip_existing (an import run twice adds nothing twice). Returns those added."""
        with self.database.session() as session:
            documents = list(session.scalars(select(Document).where(Document.collection_id == collection.id)))
            existing = {
                (_same_question(q.question), q.expected_filename, q.expected_page)
                for q in session.scalars(select(EvalQuestion).where(EvalQuestion.collection_id == collection.id))
            }
            rows = []
            for item in items:
                self._check(collection, item, documents)
                key = (_same_question(item.question), item.file, item.page)
                if key in existing:
                    if skip_existing:
                        continue
                    raise EvalSetError(
                        f"{item.question!r} ({item.file}{f', page {item.page}' if item.page else ''}) "
                        f"is already in the evaluation set of {collection.name}"
                    )
                existing.add(key)
                rows.append(
                    EvalQuestion(
                        collection_id=collection.id,
                        question=item.question.strip(),
                        expected_filename=item.file,
                        expected_page=item.page,
                        created_by=created_by,
                    )
                )
            session.add_all(rows)
            session.flush()
            return [_info(row) for row in rows]

    @staticmethod
    def _check(collection: Collection, item: NewEvalQuestion, documents: list[Document]) -> None:
        if not item.question.strip():
            raise EvalSetError("the question is empty")
        named = [d for d in documents if d.filename == item.file]
        if not named:
            files = sorted({d.filename for d in documents})
            shown = ", ".join(files[:10]) + (f" and {len(files) - 10} more" if len(files) > 10 else "")
            raise EvalSetError(
                f"collection {collection.name} has no file named {item.file!r}"
                + (f"; its files are {shown}" if files else "; it has no files yet")
            )
        ready = [d for d in named if d.status == DocumentStatus.ready]
        if not ready:
            reason = named[-1].error or named[-1].status.value
            raise EvalSetError(f"{item.file} is not ready in {collection.name} ({reason}): its pages cannot be searched")
        pages = [d.page_count or 0 for d in ready]  # a count not known yet (None) fails all() as 0 does
        if item.page is not None and all(pages) and item.page > max(pages):
            raise EvalSetError(f"{item.file} has {max(pages)} page(s): there is no page {item.page}")

    def remove(self, collection_id: int, question_id: int) -> bool:
        """False when the collection has no such question."""
        with self.database.session() as session:
            # A DELETE gives a CursorResult, which has rowcount; Session.execute is typed as a plain Result.
            removed = cast(
                CursorResult[Any],
                session.execute(
                    delete(EvalQuestion).where(EvalQuestion.id == question_id, EvalQuestion.collection_id == collection_id)
                ),
            ).rowcount
        return bool(removed)

    def record(
        self, collection: Collection, index_kind: str, scores: EvalScores, job_id: int | None = None, verdict: str | None = None
    ) -> EvalRunInfo:
        with self.database.session() as session:
            row = EvalRun(
                collection_id=collection.id,
                index_kind=index_kind,
                recall_at_5=scores.recall_at_5,
                mrr_at_10=scores.mrr_at_10,
                questions=scores.questions,
                job_id=job_id,
                verdict=verdict,
            )
            session.add(row)
            session.flush()
            return _run_info(row, collection.name)

    def runs(self, collection: Collection, limit: int = 50) -> list[EvalRunInfo]:
        """Newest first."""
        with self.database.session() as session:
            rows = session.scalars(
                select(EvalRun).where(EvalRun.collection_id == collection.id).order_by(EvalRun.id.desc()).limit(limit)
            )
            return [_run_info(row, collection.name) for row in rows]


def evaluate(answerer, collection: Collection, questions: list[EvalQuestionInfo]) -> EvalScores:
    """The set's recall@5 and MRR@10 on the index `answerer` searches, with the options and
    depths a real question gets (Answerer.default_options)."""
    options = answerer.default_options()
    found = reciprocal = 0.0
    missed = []
    wanted: str | tuple[str, int]
    for question in questions:
        ranking = answerer.rank(question.question, [collection], options)
        if question.page is None:
            places = [c.filename for c in ranking.chunks]
            wanted = question.file
        else:
            places = [(c.filename, c.page) for c in ranking.chunks]
            wanted = (question.file, question.page)
        # A place ranks where its best chunk does (as documents do in kb eval retrieval).
        metrics = score_ranking(list(dict.fromkeys(places)), {wanted: 1})
        found += metrics[f"R@{CUTOFF}"]
        reciprocal += metrics["MRR@10"]
        if not metrics[f"R@{CUTOFF}"]:
            missed.append(question.question)
    count = len(questions)
    return EvalScores(
        recall_at_5=found / count if count else 0.0,
        mrr_at_10=reciprocal / count if count else 0.0,
        questions=count,
        missed=missed,
    )
