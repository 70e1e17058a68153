"""Before a re-index's swap, the collection's own evaluation set decides whether it happens.

The set (app.collection_eval) is run against the live index and against the candidate, the
collection as the swap would leave it. Both are searched by the very code a question goes
through (app.answering.Answerer): the candidate is a throwaway copy of the collection in the
job's staging folder, ``<data dir>/reindex/<job id>/candidate/`` (a SQLite database with the
staged chunks of every rebuilt document and the current chunks of the others, and its FAISS
index), so nothing a reader sees changes. It is removed after the run; a kill leaves it in
the job's folder, where the next run starts it afresh (or the folder goes with the job).

When the candidate's recall@5 is lower than the live one's by more than
MMKB_REINDEX_GUARD_MARGIN, the live index stays and the job is held with its staged files
(`kb reindex --force` swaps them in without rebuilding). Both scores are recorded either way.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Literal, cast

from sqlalchemy import Table, insert, select

from app.answering import Answerer
from app.collection_eval import CANDIDATE, LIVE, EvalSets, evaluate
from app.db import Database
from app.indexes import TEXT_SPACE, IndexManager, KeywordIndexManager
from app.models import Chunk, ChunkKind, Collection, Document, DocumentStatus
from app.reindex_build import StagedDocument
from app.schemas import EvalScores, GuardReport
from app.settings import Settings

log = logging.getLogger(__name__)

CANDIDATE_FOLDER = "candidate"
# Rounding noise in the means must not turn "equal" into "worse".
EPSILON = 1e-9


def _scores(scores: EvalScores) -> str:
    return f"recall@5 {scores.recall_at_5:.3f}, MRR@10 {scores.mrr_at_10:.3f}"


class RegressionGuard:
    def __init__(self, settings: Settings, database: Database, indexes: IndexManager, models) -> None:
        self.settings = settings
        self.database = database
        self.indexes = indexes
        self.models = models
        self.sets = EvalSets(database)

    def judge(
        self,
        collection: Collection,
        job_id: int,
        folder: Path,
        staged: Callable[[], list[StagedDocument]],
        text_embedder: str | None,
        force: bool = False,
    ) -> GuardReport | None:
        """The verdict on a re-index of `collection` whose results are staged in `folder`
        (`staged` reads them) and embedded with `text_embedder`; None when the collection has
        no evaluation questions (it re-indexes as if there were no guard)."""
        questions = self.sets.questions(collection.id)
        if not questions:
            return None
        live_answerer = Answerer(self.settings, self.database, self.indexes, self.models, KeywordIndexManager(self.database))
        live, trouble = None, ""
        try:
            live = evaluate(live_answerer, collection, questions)
        except Exception as exc:  # e.g. the old embedder is no longer installed: nothing to compare with
            log.warning("the live index of %s could not be evaluated", collection.name, exc_info=True)
            trouble = f"{type(exc).__name__}: {exc}"
        with self._candidate(collection, folder, staged(), text_embedder, live_answerer) as (answerer, copy):
            candidate = evaluate(answerer, copy, questions)
        margin = self.settings.reindex_guard_margin
        worse = live is not None and candidate.recall_at_5 < live.recall_at_5 - margin - EPSILON
        verdict: Literal["swapped", "kept", "forced"] = ("forced" if force else "kept") if worse else "swapped"
        return GuardReport(
            collection=collection.name,
            job_id=job_id,
            live=live,
            candidate=candidate,
            margin=margin,
            verdict=verdict,
            message=self._message(
                collection, job_id, live, candidate, margin, verdict, trouble, self._switch(collection, text_embedder)
            ),
        )

    def record(self, collection: Collection, report: GuardReport) -> GuardReport:
        """Both scores into the collection's history, with what was done; call once it is done."""
        if report.live is not None:
            self.sets.record(collection, LIVE, report.live, report.job_id, report.verdict)
        self.sets.record(collection, CANDIDATE, report.candidate, report.job_id, report.verdict)
        return report

    def _switch(self, collection: Collection, text_embedder: str | None) -> str:
        """` --embedder NAME` when the re-index moves the collection to another embedder: a
        plain `--force` would re-index on its current one and drop the staged job."""
        target = self.models.embedder_name(text_embedder)
        return f" --embedder {target}" if target != self.models.embedder_name(collection.text_embedder) else ""

    @staticmethod
    def _message(
        collection: Collection,
        job_id: int,
        live: EvalScores | None,
        candidate: EvalScores,
        margin: float,
        verdict: str,
        trouble: str,
        switch: str = "",
    ) -> str:
        count = f"{candidate.questions} evaluation question{'s' if candidate.questions != 1 else ''}"
        if live is None:
            return (
                f"the live index could not be searched ({trouble}), so there is nothing to compare with; the new index "
                f"({_scores(candidate)} on {count}) went live"
            )
        compared = f"{_scores(candidate)} on the new index against {_scores(live)} on the live one ({count})"
        if verdict == "swapped":
            return f"{compared}: the new index went live"
        lost = [q for q in candidate.missed if q not in live.missed]
        lost_line = "\nno longer in the first 5: " + "; ".join(lost) if lost else ""
        if verdict == "forced":
            return f"{compared}: recall@5 fell by more than {margin:.2f}, and the new index went live anyway (--force){lost_line}"
        return (
            f"{compared}: recall@5 fell by more than {margin:.2f} (MMKB_REINDEX_GUARD_MARGIN), so the live index stays. "
            f"The new one is kept staged as job {job_id}: `kb reindex --collection {collection.name}{switch} --force` puts it "
            f"in place without rebuilding{lost_line}"
        )

    # --- the candidate ---------------------------------------------------------------

    @contextmanager
    def _candidate(
        self, collection: Collection, folder: Path, staged: list[StagedDocument], text_embedder: str | None, live: Answerer
    ) -> Iterator[tuple[Answerer, Collection]]:
        """An answerer over a copy of the collection as the swap would leave it, and that copy's
        collection row (with the embedder the new vectors come from)."""
        where = folder / CANDIDATE_FOLDER
        shutil.rmtree(where, ignore_errors=True)  # a killed run's copy, half written maybe
        where.mkdir(parents=True)
        database = Database(f"sqlite:///{(where / 'candidate.sqlite3').resolve()}")
        try:
            copy = self._copy(collection, database, staged, text_embedder)
            dims = {**self.indexes.dims, TEXT_SPACE: self.models.text_embedder_for(text_embedder).dim}
            indexes = IndexManager(database, where / "indexes", dims, hnsw_threshold=self.indexes.hnsw_threshold)
            for space in dims:
                indexes.sync(copy.id, space)
            # The live side's HyDE writer: with HyDE on, both indexes are searched with one passage.
            yield Answerer(self.settings, database, indexes, self.models, KeywordIndexManager(database), live.hyde), copy
        finally:
            database.dispose()
            shutil.rmtree(where, ignore_errors=True)

    def _copy(
        self, collection: Collection, target: Database, staged: list[StagedDocument], text_embedder: str | None
    ) -> Collection:
        """The collection row, its ready documents and, per document, the chunks the swap
        would leave: the staged ones where the swap puts them in place, else its current ones.
        Rows are copied column by column, so columns added later come along."""
        # Declarative models mapped with __tablename__ always have a Table; SQLAlchemy types
        # __table__ as any FromClause, which insert() does not take.
        collections = cast(Table, Collection.__table__)
        documents = cast(Table, Document.__table__)
        chunks = cast(Table, Chunk.__table__)
        chunk_columns = [c for c in chunks.columns if c.key != "id"]
        same_embedder = self.models.embedder_name(text_embedder) == self.models.embedder_name(collection.text_embedder)
        with self.database.session() as source, target.session() as session:
            row = dict(source.execute(select(collections).where(collections.c.id == collection.id)).mappings().one())
            session.execute(insert(collections), [{**row, "text_embedder": text_embedder}])
            ready = [
                dict(r)
                for r in source.execute(
                    select(documents).where(
                        documents.c.collection_id == collection.id, documents.c.status == DocumentStatus.ready
                    )
                ).mappings()
            ]
            if ready:
                session.execute(insert(documents), ready)
            by_id = {d["id"]: d for d in ready}
            # The swap's own rule (Reindexer._swap): a result replaces the chunks of the very bytes
            # it was built from, still ready in this collection, and only if it was built at all.
            replaced = {
                s.document_id: s
                for s in staged
                if not s.error and s.document_id in by_id and by_id[s.document_id]["sha256"] == s.sha256
            }
            for staged_document in replaced.values():
                rows = [
                    {
                        **asdict(c),
                        "kind": ChunkKind(c.kind),
                        "document_id": staged_document.document_id,
                        "collection_id": collection.id,
                    }
                    for c in staged_document.chunks
                ]
                if rows:
                    session.execute(insert(chunks), rows)
            kept = sorted(set(by_id) - set(replaced))
            for start in range(0, len(kept), 100):
                query = select(*chunk_columns).where(chunks.c.document_id.in_(kept[start : start + 100]))
                if not same_embedder:
                    # Vectors of the old model cannot be searched with the new one's (the swap
                    # refuses such a move anyway, app.reindex): their figures' CLIP rows stay.
                    query = query.where(chunks.c.vector_space != TEXT_SPACE)
                rows = [dict(r) for r in source.execute(query).mappings()]
                if rows:
                    session.execute(insert(chunks), rows)
            session.flush()
            copy = session.get(Collection, collection.id)
            assert copy is not None  # inserted above, in this session
            return copy
