"""Per-embedder score calibration: each text embedder's cosine mapped onto all-MiniLM-L6-v2's scale.

    .venv/bin/python benchmarks/embedder_calibration.py --scifact DIR [--cache DIR] [--qa DIR] [--embedders a,b]
    .venv/bin/python benchmarks/embedder_calibration.py --make-subset OUT [--scifact ../shared/eval/text/scifact]

Collections may use different embedders (collections.text_embedder), and their scores meet in
three places: the dense hits of several collections are merged by score, the lexical
reranker adds 0.3 x BM25 to the cosine (a weight set on MiniLM's spread), and the refusal
floor (0.3) is compared with the best fused score. e5's cosines sit around 0.7-0.9, so
raw they bury MiniLM's hits, drown the lexical term and never fall below the floor.

1. **Fit**. Scale and offset (SciFact, BEIR folder): per query, the cosine of the best chunk
   and of the 40th (MMKB_DENSE_TOP_K: the candidates the reranker and the floor see); the
   medians of the two over all queries are an embedder's anchors, and the map takes them onto
   MiniLM's. (The best relevant vs best non-relevant chunk were tried first: on SciFact they
   are nearly equal for e5 and equal for USE, so their difference cannot anchor a scale.)
   Cross-lingual shift (the 36 Chinese/English pairs of benchmarks/multilingual_retrieval.py):
   the median cosine of a question and its own passage, same language (en→en, zh→zh) minus
   across languages (zh→en, en→zh); none for MiniLM, whose cross-lingual cosines carry no
   signal. Both go into app/registry.py as the model's `score_map`.
2. **Check**, raw (identity) against the fitted map, both through the app's own ranking
   (Answerer.rank with the shipped options):
   - `alone`: nDCG@10 of the embedder's own collection (the reranker's weight);
   - `mixed`: the corpus split in two collections asked together, even documents embedded by
     MiniLM and odd ones by the embedder: nDCG@10, and the share of the top-10 documents from
     the embedder's half (the relevant documents are split about evenly); MiniLM/MiniLM is the
     reference split;
   - `floor` (with --qa): the us-public-records PDFs ingested with the embedder; the share of
     answerable questions whose best score clears the refusal floor, and of unanswerable ones
     it refuses, plus page recall@5 of the answerable ones.

--index-only: just the time to ingest the QA set's PDFs with each embedder (wall and CPU of
this process; parse workers off, so the CPU time is all of it).

--make-subset writes a SciFact subset (every judged abstract and random others, seed 0): the
full corpus takes e5 ~90 CPU-minutes here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app import registry  # noqa: E402 - hub libraries offline first
from app.evaluation import _corpus_pieces, _embeddings, load_beir, score_ranking  # noqa: E402
from app.indexes import TEXT_SPACE  # noqa: E402
from app.model_set import ModelSet  # noqa: E402
from app.models import Chunk, ChunkKind, Collection, Document, DocumentStatus  # noqa: E402
from app.service import KnowledgeBase  # noqa: E402
from app.settings import Settings  # noqa: E402
from benchmarks.multilingual_retrieval import PAIRS  # noqa: E402
from ingest.embedders import embed_query  # noqa: E402

REFERENCE = "all-MiniLM-L6-v2"
EMBEDDERS = (REFERENCE, "multilingual-e5-small-q4", "use-multilingual-v3")


def make_subset(scifact: Path, out: Path, others: int = 717, seed: int = 0) -> None:
    beir = load_beir(scifact)
    judged = sorted({doc for rel in beir.qrels.values() for doc in rel})
    rest = sorted(set(beir.corpus) - set(judged))
    keep = set(judged) | set(random.Random(seed).sample(rest, others))
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with (out / "corpus.jsonl").open("w", encoding="utf-8") as handle:
        for doc_id, (title, text) in beir.corpus.items():
            if doc_id in keep:
                handle.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    (out / "queries.jsonl").write_text((scifact / "queries.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
    (out / "qrels" / "test.tsv").write_text((scifact / "qrels" / "test.tsv").read_text(encoding="utf-8"), encoding="utf-8")


class Corpus:
    """One embedder's chunks and vectors of a BEIR corpus (read from --cache when there)."""

    def __init__(self, beir, models: ModelSet, name: str, settings: Settings, cache: Path | None) -> None:
        self.name = name
        embedder = models.text_embedder_for(name)
        started = time.perf_counter()
        self.pieces = _corpus_pieces(beir, embedder, settings)
        self.vectors = _embeddings(embedder, [piece.text for _, piece in self.pieces], cache, 256)
        self.seconds = time.perf_counter() - started
        self.docs = np.array([doc_id for doc_id, _ in self.pieces])
        self.queries = {qid: embed_query(embedder, text) for qid, text in beir.queries.items()}

    def anchors(self, depth: int) -> tuple[float, float]:
        """Medians over queries of the best chunk's cosine and of the `depth`-th best's."""
        best, last = [], []
        for vector in self.queries.values():
            cosines = np.sort(self.vectors @ vector)[::-1]
            best.append(float(cosines[0]))
            last.append(float(cosines[min(depth, len(cosines)) - 1]))
        return float(np.median(best)), float(np.median(last))


def language_gap(embedder) -> tuple[float, float]:
    """Median cosine of each pair's question with its own passage: same language, across."""
    zh, en = embedder.embed([p[1] for p in PAIRS]), embedder.embed([p[2] for p in PAIRS])
    q_zh, q_en = embedder.embed_queries([p[3] for p in PAIRS]), embedder.embed_queries([p[4] for p in PAIRS])
    same = np.concatenate([np.sum(q_en * en, axis=1), np.sum(q_zh * zh, axis=1)])
    across = np.concatenate([np.sum(q_zh * en, axis=1), np.sum(q_en * zh, axis=1)])
    return float(np.median(same)), float(np.median(across))


def fit(anchors: tuple[float, float], reference: tuple[float, float], gap: tuple[float, float] | None) -> registry.ScoreMap:
    """The map taking `anchors` (best, depth-th) onto `reference`'s; gap: (same, across) language."""
    scale = (reference[0] - reference[1]) / (anchors[0] - anchors[1])
    return registry.ScoreMap(scale, reference[0] - scale * anchors[0], gap[0] - gap[1] if gap else 0.0)


def add_collection(kb: KnowledgeBase, name: str, embedder: str, beir, corpus: Corpus, keep: set[str]) -> Collection:
    """The corpus documents in `keep` as Document + Chunk rows of a collection that uses
    `embedder`, with its vectors (as app.evaluation.index_corpus does for one embedder)."""
    with kb.database.session() as session:
        collection = Collection(name=name, text_embedder=embedder)
        session.add(collection)
        session.flush()
        documents = {}
        for doc_id, (_title, text) in beir.corpus.items():
            if doc_id in keep:
                documents[doc_id] = Document(
                    collection_id=collection.id,
                    sha256=hashlib.sha256(doc_id.encode()).hexdigest(),
                    filename=doc_id,
                    mime="text/plain",
                    size_bytes=len(text.encode()),
                    status=DocumentStatus.ready,
                    page_count=1,
                )
        session.add_all(documents.values())
        session.flush()
        session.add_all(
            Chunk(
                document_id=documents[doc_id].id,
                collection_id=collection.id,
                page=1,
                kind=ChunkKind.text,
                ordinal=piece.ordinal,
                text=piece.text,
                char_start=piece.char_start,
                char_end=piece.char_end,
                vector_space=TEXT_SPACE,
                embedding=np.asarray(corpus.vectors[row], dtype=np.float32).tobytes(),
            )
            for row, (doc_id, piece) in enumerate(corpus.pieces)
            if doc_id in keep
        )
    kb.indexes.sync(collection.id, TEXT_SPACE)
    return collection


def ask(kb: KnowledgeBase, beir, collections: list[Collection], marked: set[str] | None = None) -> tuple[float, float]:
    """Mean nDCG@10 over the queries, and the share of top-10 documents that are in `marked`."""
    answerer = kb._answerer()
    ndcg, share = [], []
    for qid, text in sorted(beir.queries.items()):
        ranking = answerer.rank(text, collections, answerer.default_options())
        ranked = list(dict.fromkeys(candidate.filename for candidate in ranking.chunks))
        ndcg.append(score_ranking(ranked, beir.qrels[qid])["nDCG@10"])
        if marked is not None:
            share.append(sum(doc in marked for doc in ranked[:10]) / max(len(ranked[:10]), 1))
    return float(np.mean(ndcg)), float(np.mean(share)) if share else float("nan")


def ingest_qa(kb: KnowledgeBase, qa_dir: Path, embedder: str, times: dict | None = None) -> list[Collection]:
    """The QA set's PDFs, really ingested, into a collection that uses `embedder`; `times`
    gets (pages, chunks, wall s, CPU s) under the embedder's name."""
    admin = kb.system_user()
    name = f"qa-{embedder}"
    kb.create_collection(admin, name, text_embedder=embedder)
    kb.models.text_embedder_for(embedder)  # loaded outside the timing
    wall, cpu = time.perf_counter(), time.process_time()
    report = kb.ingest(admin, name, paths=sorted((qa_dir / "docs").glob("*.pdf")))
    if times is not None:
        times[embedder] = (
            sum(f.pages or 0 for f in report.ingested),
            sum(f.text_chunks for f in report.ingested),
            time.perf_counter() - wall,
            time.process_time() - cpu,
        )
    assert not report.failed, report.failed
    return kb.readable_collections(admin, [name])


def floor_check(kb: KnowledgeBase, qa_dir: Path, collections: list[Collection]) -> dict[str, str]:
    """Per question the best ranked score against the refusal floor, and page recall@5; the
    Chinese questions (zh01-zh06 on a Chinese page, xl01-xl02 on English ones) apart."""
    answerer = kb._answerer()
    floor = kb.models.reranker.relevance_floor
    items = [json.loads(line) for line in (qa_dir / "qa.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    counts = {key: [0, 0] for key in ("cleared", "cleared zh", "refused", "page R@5", "page R@5 zh")}

    def count(key: str, hit: bool) -> None:
        counts[key][0] += hit
        counts[key][1] += 1

    for item in items:
        ranking = answerer.rank(item["question"], collections, answerer.default_options())
        best = ranking.chunks[0].score if ranking.chunks else float("-inf")
        if item.get("answerable", True) and item.get("file"):
            top = [(c.filename, c.page) for c in ranking.chunks[:5]]
            found = any((item["file"], page) in top for page in item["pages"])
            suffix = " zh" if item["id"].startswith(("zh", "xl")) else ""
            count("cleared" + suffix, best >= floor)
            count("page R@5" + suffix, found)
        else:
            count("refused", best < floor)
    return {key: f"{hit}/{total}" for key, (hit, total) in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scifact", type=Path, default=ROOT.parent / "shared" / "eval" / "text" / "scifact")
    parser.add_argument("--cache", type=Path, default=None, help="keep corpus embeddings here")
    parser.add_argument("--qa", type=Path, default=None, help="us-public-records folder for the floor check")
    parser.add_argument("--embedders", default=",".join(EMBEDDERS))
    parser.add_argument("--make-subset", type=Path, default=None, help="write a SciFact subset here and stop")
    parser.add_argument("--index-only", action="store_true", help="only time ingesting the --qa PDFs per embedder")
    args = parser.parse_args()
    if args.make_subset:
        make_subset(args.scifact, args.make_subset)
        return
    names = [n.strip() for n in args.embedders.split(",") if n.strip()]
    names = [REFERENCE] + [n for n in names if n != REFERENCE]
    if args.index_only:
        index_times(args.qa, names)
        return
    beir = load_beir(args.scifact)
    with tempfile.TemporaryDirectory(prefix="mmkb-calibration-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", database_url=None, parse_workers=0)
        models = ModelSet(settings)
        corpora = {name: Corpus(beir, models, name, settings, args.cache) for name in names}
        anchors = {name: corpus.anchors(settings.dense_top_k) for name, corpus in corpora.items()}
        gaps = {name: language_gap(models.text_embedder_for(name)) for name in names}
        maps = {name: fit(anchors[name], anchors[REFERENCE], gaps[name] if name != REFERENCE else None) for name in names}
        print(f"{args.scifact}: {len(beir.corpus)} documents, {len(beir.queries)} queries; pairs: {len(PAIRS)}\n")
        print(
            f"| embedder | SciFact: median best cosine | median {settings.dense_top_k}th | pairs: question·own passage, "
            "same language | across | fitted map: scale, offset, cross-lingual | corpus chunks | embed time (s) |"
        )
        print("| --- " * 8 + "|")
        for name in names:
            m = maps[name]
            print(
                f"| {name} | {anchors[name][0]:.3f} | {anchors[name][1]:.3f} | {gaps[name][0]:.3f} | {gaps[name][1]:.3f} | "
                f"{m.scale:.3f}, {m.offset:+.3f}, {m.cross_lingual:+.3f} | {len(corpora[name].pieces)} | {corpora[name].seconds:.0f} |"
            )
        sys.stdout.flush()

        identity = lambda name: registry.IDENTITY  # noqa: E731 - the raw cosines
        fitted = lambda name: maps.get(models.embedder_name(name), registry.IDENTITY)  # noqa: E731
        kb = KnowledgeBase(settings, models=models)
        even = {doc for i, doc in enumerate(sorted(beir.corpus)) if i % 2 == 0}
        odd = set(beir.corpus) - even
        rows = []
        for name in names:
            alone = add_collection(kb, f"alone-{name}", name, beir, corpora[name], set(beir.corpus))
            if name == REFERENCE:
                half_a = add_collection(kb, f"even-{name}", REFERENCE, beir, corpora[REFERENCE], even)
            half_b = add_collection(kb, f"odd-{name}", name, beir, corpora[name], odd)
            qa = ingest_qa(kb, args.qa, name) if args.qa else None
            for label, score_map in (("raw", identity), ("calibrated", fitted)):
                if name == REFERENCE and label == "calibrated":
                    continue  # the identity: the same numbers
                models.score_map = score_map
                ndcg_alone, _ = ask(kb, beir, [alone])
                ndcg_mixed, share = ask(kb, beir, [half_a, half_b], odd)
                floor = floor_check(kb, args.qa, qa) if qa else None
                rows.append((name, label, ndcg_alone, ndcg_mixed, share, floor))
                print(f"done: {name} {label}", file=sys.stderr, flush=True)
        kb.close()
    print(
        "\n| embedder | scores | alone nDCG@10 | mixed with MiniLM nDCG@10 | mixed: top-10 share from its half |"
        + (" QA: answerable over the floor (en / zh) | QA: unanswerable refused | QA: page R@5 (en / zh) |" if args.qa else "")
    )
    print("| --- " * (5 + 3 * bool(args.qa)) + "|")
    for name, label, alone, mixed, share, floor in rows:
        cells = (
            f" {floor['cleared']} / {floor['cleared zh']} | {floor['refused']} | {floor['page R@5']} / {floor['page R@5 zh']} |"
            if floor
            else ""
        )
        print(f"| {name} | {label} | {alone:.3f} | {mixed:.3f} | {share:.2f} |" + cells)
    if args.qa:
        print(
            "\nQA: the us-public-records PDFs ingested with the embedder alone; each question's best score against the "
            "refusal floor (the lexical reranker's 0.3). zh: its 8 Chinese questions (6 on a Chinese page, 2 on English ones)."
        )


def index_times(qa_dir: Path, names: list[str]) -> None:
    times: dict[str, tuple] = {}
    with tempfile.TemporaryDirectory(prefix="mmkb-index-time-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", database_url=None, parse_workers=0)
        kb = KnowledgeBase(settings, models=ModelSet(settings))
        for name in names:
            ingest_qa(kb, qa_dir, name, times)
        kb.close()
    print("| embedder | pages | text chunks | ingest wall (s) | ingest CPU (s) | CPU s per chunk |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, (pages, chunks, wall, cpu) in times.items():
        print(f"| {name} | {pages} | {chunks} | {wall:.1f} | {cpu:.1f} | {cpu / max(chunks, 1):.3f} |")


if __name__ == "__main__":
    main()
