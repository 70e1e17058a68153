"""Answer evaluation: `kb eval answers --data DIR|FILE`.

A QA set is JSON Lines, one question per line:

    {"id": "q1", "question": "What is the cap?", "answer": "180 EUR", "file": "policy.pdf", "pages": [3]}
    {"id": "q2", "question": "Who won in 1930?", "answerable": false}

``page`` (one number) may stand for ``pages``; a question with gold pages in several files
gives ``"sources": [{"file": ..., "pages": [...]}, ...]`` instead of file/pages. A question
with ``"answerable": false``, or with no answer and no file, must be refused. Pages are
1-based. A JSON array of such objects is read too (``samples/questions.json``: ``answer``,
``file`` and ``page`` are null for the unanswerable ones).

A directory holds the QA file (``qa.jsonl``, ``questions.jsonl`` or ``questions.json``) and
its documents under ``docs/`` or ``collection/``; they are ingested into a temporary data
directory (the configured knowledge base is untouched). Or the questions are asked of an
existing collection of the configured knowledge base.

Each question is answered twice with the same model and prompt: by the full pipeline
(BM25 fusion, rerank, HyDE as configured) and by a naive baseline (dense top-k only). The
relevance gate and the citation check run in both; the baseline's gate sees raw cosines.
"""

from __future__ import annotations

import json
import re
import string
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import cast

import numpy as np

from app.answering import RetrievalOptions
from app.eval_files import json_rows
from app.generation.citations import is_refusal
from app.generation.prompting import question_language
from app.schemas import Answer
from app.settings import Settings
from ingest.sentences import has_chinese, text_language, unify_dashes

QA_FILE_NAMES = ("qa.jsonl", "questions.jsonl", "questions.json")
DOC_DIR_NAMES = ("docs", "collection")
EVAL_COLLECTION = "eval-answers"


class QaSetError(ValueError):
    """A QA set that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class GoldPage:
    file: str
    page: int


@dataclass(frozen=True)
class QaItem:
    id: str
    question: str
    answer: str | None  # None: the collection does not answer it, the reply must be a refusal
    gold_pages: frozenset[GoldPage] = frozenset()
    # Groups reported apart ("table": the answer is only in a table); "zh" is added to every
    # question written in Chinese.
    tags: frozenset[str] = frozenset()

    @property
    def answerable(self) -> bool:
        return self.answer is not None


@dataclass(frozen=True)
class QaSet:
    items: list[QaItem]
    qa_file: Path
    documents: Path | None  # folder of documents to ingest, when the set ships its own


# ---------------------------------------------------------------- reading a set


def _pages(value, where: str) -> list[int]:
    pages = value if isinstance(value, list) else [value]
    if not pages or not all(isinstance(p, int) and not isinstance(p, bool) and p >= 1 for p in pages):
        raise QaSetError(f"{where}: pages must be whole numbers from 1, got {value!r}")
    return pages


def parse_item(row: object, where: str, default_id: str) -> QaItem:
    if not isinstance(row, dict):
        raise QaSetError(f"{where}: expected a JSON object, got {type(row).__name__}")
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise QaSetError(f"{where}: 'question' is missing or empty")
    answer = row.get("answer")
    gold: list[GoldPage] = []
    if isinstance(row.get("sources"), list):
        for source in row["sources"]:
            if not isinstance(source, dict) or not source.get("file"):
                raise QaSetError(f"{where}: each of 'sources' needs a 'file'")
            gold += [GoldPage(str(source["file"]), p) for p in _pages(source.get("pages", source.get("page")), where)]
    elif row.get("file"):
        gold = [GoldPage(str(row["file"]), p) for p in _pages(row.get("pages", row.get("page")), where)]
    answerable = row.get("answerable", answer is not None or bool(gold))
    tags = row.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise QaSetError(f"{where}: 'tags' must be a list of strings")
    tags = frozenset(tags) | ({"zh"} if has_chinese(question) else set())
    if not answerable:
        return QaItem(str(row.get("id", default_id)), question.strip(), None, tags=tags)
    if not isinstance(answer, str) or not answer.strip():
        raise QaSetError(f"{where}: an answerable question needs a non-empty 'answer' (or set \"answerable\": false)")
    if not gold:
        raise QaSetError(f"{where}: an answerable question needs its gold 'file' and 'page'/'pages' (or 'sources')")
    return QaItem(str(row.get("id", default_id)), question.strip(), answer.strip(), frozenset(gold), tags)


def read_qa_file(path: Path) -> list[QaItem]:
    items = [parse_item(row, f"{path} {where}", f"q{number}") for where, row, number in json_rows(path, QaSetError)]
    if not items:
        raise QaSetError(f"{path}: no questions")
    return items


def load_qa_set(data: Path, docs: Path | None = None) -> QaSet:
    if data.is_dir():
        qa_file = next((data / name for name in QA_FILE_NAMES if (data / name).is_file()), None)
        if qa_file is None:
            raise QaSetError(f"{data}: no QA file; expected one of {', '.join(QA_FILE_NAMES)}")
        if docs is None:
            docs = next((data / name for name in DOC_DIR_NAMES if (data / name).is_dir()), None)
    elif data.is_file():
        qa_file = data
    else:
        raise QaSetError(f"{data}: no such file or directory")
    return QaSet(read_qa_file(qa_file), qa_file, docs)


# ---------------------------------------------------------------- metrics

_MARKER_RE = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")
_ARTICLES_RE = re.compile(r"\b(a|an|the)\b")
_CJK_SPACE_RE = re.compile(r"(?<=[\u3400-\u9fff]) +| +(?=[\u3400-\u9fff])")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation (lowercase, no punctuation, no articles, single spaces) after
    removing citation markers, so "10 years [1]." equals "10 years"; NFKC and every dash as
    a hyphen first, so typography (full-width digits, en dashes) does not decide a match."""
    text = unify_dashes(_MARKER_RE.sub(" ", unicodedata.normalize("NFKC", text))).lower().translate(_PUNCTUATION)
    text = " ".join(_ARTICLES_RE.sub(" ", text).split())
    # Chinese is written without spaces; a PDF's "3.4 公顷 /处" is the gold "3.4公顷/处".
    return _CJK_SPACE_RE.sub("", text)


def token_f1(prediction: str, gold: str) -> float:
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not predicted or not expected:
        return float(predicted == expected)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, gold: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(gold)


def contains_gold(prediction: str, gold: str) -> bool:
    """The normalised gold answer appears, on word boundaries, in the normalised answer: the
    fair "correct" for a sentence answer to a short gold answer, which exact match is not.
    Boundaries are Latin letters and digits, so that Chinese answers (no spaces) count."""
    gold, prediction = normalize_answer(gold), normalize_answer(prediction)
    if not gold:
        return False
    # A word boundary is a space or the edge of a Latin word or number: Chinese text has no
    # spaces, so "最多34公顷处" contains "34公顷处", while "1000" does not contain "100".
    pattern = rf"(?<![a-z0-9]){re.escape(gold)}(?![a-z0-9])"
    return re.search(pattern, prediction) is not None


def citation_precision(cited: set[GoldPage], gold: frozenset[GoldPage]) -> float | None:
    """Share of the cited file+pages that are gold pages; None when nothing was cited."""
    return len(cited & gold) / len(cited) if cited else None


def citation_recall(cited: set[GoldPage], gold: frozenset[GoldPage]) -> float:
    return len(cited & gold) / len(gold) if gold else 0.0


# ---------------------------------------------------------------- running


@dataclass(frozen=True)
class AnswerConfig:
    name: str
    options: RetrievalOptions | None  # None: the pipeline as the settings configure it


# Short names for --configs.
CONFIG_KEYS = {"full": "full pipeline", "naive": "naive (dense top-k)"}


def configurations(answerer, keys: list[str] | None = None) -> tuple[AnswerConfig, ...]:
    """The configurations to answer with: all by default, else those named in `keys` ("full", "naive")."""
    every = (
        AnswerConfig(CONFIG_KEYS["full"], answerer.default_options()),
        AnswerConfig(CONFIG_KEYS["naive"], RetrievalOptions(keyword=False, hyde=False, rerank=False, translate=False)),
    )
    if not keys:
        return every
    unknown = [key for key in keys if key not in CONFIG_KEYS]
    if unknown:
        raise QaSetError(f"unknown configuration(s) {', '.join(unknown)}; choose from {', '.join(CONFIG_KEYS)}")
    return tuple(config for config in every if config.name in {CONFIG_KEYS[key] for key in keys})


@dataclass
class QuestionResult:
    id: str
    question: str
    gold_answer: str | None
    answer: str
    refused: bool
    cited: list[tuple[str, int]]
    latency_s: float
    f1: float | None = None
    exact: bool | None = None
    contains: bool | None = None
    precision: float | None = None
    recall: float | None = None
    extractive: bool = False  # the answer is the quoted source sentence
    quote: str | None = None  # the verified quote shown before the answer
    language_match: bool = True  # the answer (or refusal) is in the question's language
    tags: list[str] = field(default_factory=list)


def score_answer(item: QaItem, answer: Answer, latency_s: float) -> QuestionResult:
    cited = {GoldPage(s.filename, s.page) for s in answer.cited_sources if s.page is not None}
    refused = not answer.supported or is_refusal(answer.text)
    result = QuestionResult(
        item.id,
        item.question,
        item.answer,
        answer.text,
        refused,
        sorted((c.file, c.page) for c in cited),
        latency_s,
        extractive=answer.extractive,
        quote=answer.quote.text if answer.quote else None,
        tags=sorted(item.tags),
        language_match=text_language(answer.text) == question_language(item.question),
    )
    if item.answer is not None:  # item.answerable
        result.f1 = 0.0 if refused else token_f1(answer.text, item.answer)
        result.exact = not refused and exact_match(answer.text, item.answer)
        result.contains = not refused and contains_gold(answer.text, item.answer)
        result.precision = citation_precision(cited, item.gold_pages)
        result.recall = citation_recall(cited, item.gold_pages)
    return result


@dataclass
class ConfigSummary:
    name: str
    answerable: int
    unanswerable: int
    f1: float
    exact: float
    contains: float
    citation_precision: float | None  # mean over answerable questions that cited something
    citation_recall: float
    refusal_accuracy: float | None  # refused / unanswerable
    false_refusals: int  # answerable questions refused
    language_match: float | None  # answers (refusals included) in the question's language
    language_match_zh: float | None  # the same over the questions asked in Chinese
    p50_s: float
    p95_s: float
    results: list[QuestionResult] = field(default_factory=list)
    # Share of the answerable questions of each tag whose answer holds the gold answer.
    contains_by_tag: dict[str, float] = field(default_factory=dict)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize(name: str, results: list[QuestionResult]) -> ConfigSummary:
    answerable = [r for r in results if r.gold_answer is not None]
    unanswerable = [r for r in results if r.gold_answer is None]
    latencies = [r.latency_s for r in results]
    # score_answer sets f1, exact, contains and recall on every result with a gold answer.
    return ConfigSummary(
        name=name,
        answerable=len(answerable),
        unanswerable=len(unanswerable),
        f1=_mean(cast(list[float], [r.f1 for r in answerable])) or 0.0,
        exact=_mean([float(cast(bool, r.exact)) for r in answerable]) or 0.0,
        contains=_mean([float(cast(bool, r.contains)) for r in answerable]) or 0.0,
        citation_precision=_mean([r.precision for r in answerable if r.precision is not None]),
        citation_recall=_mean(cast(list[float], [r.recall for r in answerable])) or 0.0,
        refusal_accuracy=_mean([float(r.refused) for r in unanswerable]),
        false_refusals=sum(r.refused for r in answerable),
        language_match=_mean([float(r.language_match) for r in results]),
        language_match_zh=_mean([float(r.language_match) for r in results if "zh" in r.tags]),
        p50_s=float(np.percentile(latencies, 50)) if latencies else float("nan"),
        p95_s=float(np.percentile(latencies, 95)) if latencies else float("nan"),
        results=results,
        contains_by_tag={
            tag: sum(bool(r.contains) for r in tagged) / len(tagged)
            for tag in sorted({t for r in answerable for t in r.tags})
            if (tagged := [r for r in answerable if tag in r.tags])
        },
    )


@dataclass
class AnswerEvalReport:
    dataset: str
    generator: str
    collection: str
    questions: int
    ingest_seconds: float | None
    configs: list[ConfigSummary]


# Called after every answer with the configuration's name and the scored result, so that a
# long run can be watched and written out as it goes.
Progress = Callable[[str, QuestionResult], None]


def evaluate(
    kb, qa: QaSet, collection: str, progress: Progress | None = None, configs: list[str] | None = None
) -> list[ConfigSummary]:
    """Answers every question with each configuration against `collection` of `kb`."""
    collections = kb.readable_collections(kb.system_user(), [collection])
    answerer = kb._answerer()
    summaries = []
    for config in configurations(answerer, configs):
        results = []
        for item in qa.items:
            started = time.perf_counter()
            answer = answerer.answer(item.question, collections, config.options)
            results.append(score_answer(item, answer, time.perf_counter() - started))
            if progress:
                progress(config.name, results[-1])
        summaries.append(summarize(config.name, results))
    return summaries


def run_answer_eval(
    qa: QaSet,
    settings: Settings,
    models,
    collection: str | None = None,
    progress: Progress | None = None,
    configs: list[str] | None = None,
) -> AnswerEvalReport:
    """collection: ask an existing collection of the knowledge base in `settings`; else the
    set's documents are ingested into a temporary data directory first."""
    from app.service import KnowledgeBase

    if collection is not None:
        kb = KnowledgeBase(settings, models=models)
        try:
            summaries = evaluate(kb, qa, collection, progress, configs)
        finally:
            kb.close()
        return AnswerEvalReport(str(qa.qa_file), models.generator.name, collection, len(qa.items), None, summaries)
    if qa.documents is None:
        raise QaSetError(
            f"{qa.qa_file}: no documents to ingest: put them in a docs/ folder next to it, pass --docs, "
            "or ask an existing collection with --collection"
        )
    with tempfile.TemporaryDirectory(prefix="mmkb-eval-answers-") as tmp:
        temp_settings = settings.model_copy(update={"data_dir": Path(tmp), "database_url": None})
        kb = KnowledgeBase(temp_settings, models=models)
        try:
            started = time.perf_counter()
            report = kb.ingest(kb.system_user(), EVAL_COLLECTION, paths=[qa.documents])
            ingest_seconds = time.perf_counter() - started
            if not report.ingested:
                raise QaSetError(f"{qa.documents}: no document could be ingested")
            summaries = evaluate(kb, qa, EVAL_COLLECTION, progress, configs)
        finally:
            kb.close()
    return AnswerEvalReport(
        str(qa.qa_file), models.generator.name, f"{qa.documents} (temporary)", len(qa.items), ingest_seconds, summaries
    )


# ---------------------------------------------------------------- output


def _cell(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def format_answer_report(report: AnswerEvalReport) -> str:
    first = report.configs[0] if report.configs else None
    counts = f"{first.answerable} answerable, {first.unanswerable} unanswerable" if first else "no configurations"
    tags = sorted({tag for c in report.configs for tag in c.contains_by_tag})
    lines = [
        f"{report.dataset}: {report.questions} questions ({counts}); collection {report.collection}"
        + (f", ingested in {report.ingest_seconds:.1f} s" if report.ingest_seconds is not None else ""),
        f"generator: {report.generator}",
        "",
        "| config | token F1 | exact match | gold in answer | citation precision | citation recall "
        "| refusal accuracy | false refusals | "
        + "".join(f"gold in answer ({tag}) | " for tag in tags)
        + "answer in question's language (zh) | p50 s | p95 s |",
        "| --- " * (11 + len(tags)) + "|",
    ]
    for c in report.configs:
        lines.append(
            f"| {c.name} | {_cell(c.f1)} | {_cell(c.exact)} | {_cell(c.contains)} | {_cell(c.citation_precision)} "
            f"| {_cell(c.citation_recall)} | {_cell(c.refusal_accuracy)} | {c.false_refusals}/{c.answerable} | "
            + "".join(f"{_cell(c.contains_by_tag.get(tag))} | " for tag in tags)
            + f"{_cell(c.language_match)} ({_cell(c.language_match_zh)}) | {c.p50_s:.1f} | {c.p95_s:.1f} |"
        )
    return "\n".join(lines)


def result_line(config: str, result: QuestionResult) -> str:
    """One JSON line for one answer: the configuration, the answer, its citations, its scores."""
    return json.dumps({"config": config, **asdict(result)}, ensure_ascii=False) + "\n"
