"""Evidence checks that decide on the sources' words, not on the model's.

- ``key_terms``: what a sentence asserts that a source must also say: its numbers, codes
  (SX-400, 737-27-1318, DHAW20190031), names (capitalised words), content words and, for
  Chinese, character bigrams. All compared after ``normalize_for_match`` (full-width forms,
  thousands separators, trailing decimal zeros, Chinese numerals).
- ``support``: whether one source supports one sentence: every number, code and name of the
  sentence is in the source and enough of its content words are.
- ``missing_terms``: the names, codes and numbers of a question that no retrieved source
  contains ("Canadian registry", "December 2015", "Norrland"): evidence that is absent.
- ``best_quote``: the sentence (or table row) of the retrieved sources that covers most of
  the question's key terms, and contains the kind of value the question asks for (a number
  for "how many", a date for "when"); quoted verbatim, shown before the model writes, and
  the extractive answer when the model refuses a question that the sources clearly answer.

Thresholds are module constants, tuned on the shared us-public-records set and the samples
(benchmarks/RESULTS.md, "Evidence-checked answers").
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from app.schemas import Quote, Source
from ingest.sentences import ABBREVIATIONS, fold_forms, normalize_for_match, sentence_spans

# A sentence is supported when at least this share of its content words is in the source
# (beside all of its numbers, codes and names).
WORD_SUPPORT = 0.5
# Chinese: share of the sentence's characters (function characters aside) that the source
# contains; characters, not bigrams, since a faithful answer reorders the source's words.
CJK_SUPPORT = 0.6
_CJK_FUNCTION_CHARS = frozenset("的了是在和有与及或为之其这那也就都而")
# A quote is shown when it covers at least this share of the question's key terms...
QUOTE_MIN_SCORE = 0.45
# ...and replaces a refusal (or an unsupported answer) as the extractive answer at this share.
EXTRACT_MIN_SCORE = 0.55
# A unit longer than this many words is cut into overlapping windows of QUOTE_WINDOW_WORDS.
QUOTE_MAX_WORDS = 60
QUOTE_WINDOW_WORDS = 30

STOPWORDS = frozenset(
    """
    a an the and or of to in on for with by at from is are was were be been being it its this that these those as
    their there which what who whom whose when where how why can could should would will may might must do does did
    not no yes than then so such into about over under per each any all some more most other also only
    has have had having i you he she we they them his her our your my me us if but up out off very just
    many much number amount according listed given shown say says said state states stated document documents
    report reported reports table page source sources answer question
    """.split()
) | frozenset(
    # Verbs that say an event happened, not what it is about: "When was the hearing held?" is
    # answered by a date line that never says "held" (stems, as key_terms compares them).
    "held hold take tak took taken occur occurr happen".split()
)
# Which one of a series: "the third accident" is not "the second accident". A sentence saying
# one must find it in the source it cites, not merely somewhere in that source's document
# (stems, as key_terms compares them).
ORDINALS = frozenset(
    "first second third fourth fifth sixth seventh eighth ninth tenth last final latest earliest previou next".split()
)
# Words of a question that say what kind of answer it wants.
_QUANTITY_RE = re.compile(
    r"\b(how (many|much|long|far|old|often)|what (is|was|are|were) the (total|number|amount|cost|price|rate|"
    r"percentage|share|value|sum|fee|maximum|minimum|average)|total|how\s+much)\b|多少|几",
    re.IGNORECASE,
)
# "When" asks for a date only as the question's first word ("What torque … when tightening"
# asks for a torque).
_DATE_RE = re.compile(
    r"^\W*when\b|\b(what date|which date|what day|what time|what year|which year|what month|"
    r"by what date|on what date|at what time|since when|until when)\b|什么时候|何时|哪一年|哪年|哪天|日期",
    re.IGNORECASE,
)
_WHO_RE = re.compile(r"\b(who|whom|which (payee|person|company|firm|employer|official|attorney))\b|谁", re.IGNORECASE)
_WHICH_RE = re.compile(r"\bwhich\b|哪", re.IGNORECASE)
_CODE_QUESTION_RE = re.compile(
    r"\b(?:docket|case|document|file|reference|serial|part|model|account|order|invoice|id|tracking|policy)\s+(?:number|no\b)"
    r"|\b(?:code|identifier|part number)\b|编号|代码|号码",
    re.IGNORECASE,
)
# "第7.10条", "表7.7", "Table 3", "Section 4.2": numbers that point somewhere, not values asked for.
_REFERENCE_NUMBER_RE = re.compile(
    r"(?:第|表|图|条|款|章|节|\b(?:table|figure|fig|section|sec|chapter|part|paragraph|page|p|no)\.?\s*)"
    r"\s*(\d+(?:\.\d+)*)",
    re.IGNORECASE,
)
_MONTHS = (
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec"
).split()

_NUMBER_RE = re.compile(r"\d+(?:\.\d+)?")
_CODE_RE = re.compile(
    r"\b(?=[\w-]*\d)(?=[\w-]*[a-z])[a-z0-9]+(?:[-/][a-z0-9]+)+\b|\b(?=\w*\d)(?=\w*[a-z])[a-z0-9]{4,}\b"
    r"|\b\d+(?:-\d+)+\b"
)
_LATIN_WORD_RE = re.compile(r"[A-Za-z\u00C0-\u024F](?:[A-Za-z0-9\u00C0-\u024F'’-]*[A-Za-z0-9\u00C0-\u024F])?")
_CAPITALISED_RE = re.compile(r"(?<![A-Za-z0-9\u00C0-\u024F.])([A-Z][A-Za-z0-9\u00C0-\u024F'’-]*)")
_CJK_RE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_MARKER_RE = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_MONTH_NUMBER_RE = re.compile(r"(\d+)\s*月")
_YEAR_RE = re.compile(r"(19|20)\d\d")


def _stem(word: str) -> str:
    """A light English stem: enough for "checks"/"check", "argued"/"argue", "fatalities"/"fatality"."""
    word = word.replace("’", "'").removesuffix("'s").strip("'")
    for suffix, replacement in (("ies", "y"), ("ied", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", ""), ("ly", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: len(word) - len(suffix)] + replacement
    return word


def _cjk_bigrams(text: str) -> set[str]:
    grams: set[str] = set()
    for run in _CJK_RE.findall(text):
        grams.update(run[i : i + 2] for i in range(len(run) - 1))
        if len(run) == 1:
            grams.add(run)
    return grams


# Characters of Chinese question words and particles: a bigram holding one says nothing of the topic.
_CJK_QUESTION_CHARS = frozenset("的是了吗呢么哪什多少几谁按请问为何")


def _topic_bigrams(grams: frozenset[str]) -> set[str]:
    return {g for g in grams if not any(c in _CJK_QUESTION_CHARS for c in g)}


@dataclass(frozen=True)
class Terms:
    numbers: frozenset[str] = frozenset()
    codes: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()
    words: frozenset[str] = frozenset()  # stemmed content words, names included
    cjk: frozenset[str] = frozenset()

    @property
    def strict(self) -> frozenset[str]:
        return self.numbers | self.codes | self.names


def key_terms(text: str) -> Terms:
    """The terms of `text` that a source must contain to say the same thing."""
    text = _MARKER_RE.sub(" ", unicodedata.normalize("NFKC", text))
    normalized = normalize_for_match(text)
    codes = set(_CODE_RE.findall(normalized))
    numbers = {n for n in _NUMBER_RE.findall(normalized)}
    # Digits inside a code belong to the code ("737-27-1318" is not three numbers).
    code_numbers = {n for code in codes for n in _NUMBER_RE.findall(code)}
    numbers -= code_numbers - {n for n in _NUMBER_RE.findall(_CODE_RE.sub(" ", normalized))}
    names = set()
    for span_start, span_end in sentence_spans(text) or [(0, len(text))]:
        sentence = text[span_start:span_end]
        for match in _CAPITALISED_RE.finditer(sentence):
            word = match.group(1).lower().replace("’", "'").removesuffix("'s")
            at_start = not sentence[: match.start()].strip(" \"'“‘([")
            if word in STOPWORDS or (word in ABBREVIATIONS and sentence[match.end() : match.end() + 1] == ".") or len(word) < 2:
                continue
            # The first word of a sentence is capitalised anyway: a name only when written in capitals.
            if at_start and not match.group(1).isupper():
                continue
            names.add(_stem(word))
    words = {_stem(w.lower()) for w in _LATIN_WORD_RE.findall(text)}
    words = {w for w in words if w not in STOPWORDS and len(w) > 1}
    return Terms(frozenset(numbers), frozenset(codes), frozenset(names), frozenset(words), frozenset(_cjk_bigrams(normalized)))


@dataclass(frozen=True)
class SourceText:
    """A source's words, prepared once for many checks."""

    normalized: str
    words: frozenset[str]
    numbers: frozenset[str]
    cjk: frozenset[str]

    @classmethod
    def of(cls, text: str) -> SourceText:
        normalized = normalize_for_match(text)
        words = frozenset(_stem(w) for w in _LATIN_WORD_RE.findall(normalized))
        return cls(normalized, words, frozenset(_NUMBER_RE.findall(normalized)), frozenset(_cjk_bigrams(normalized)))

    def has(self, term: str, kind: str) -> bool:
        if kind == "number":
            return term in self.numbers
        if kind == "code":
            return term in self.normalized
        return term in self.words or any(w.startswith(term) for w in self.words if len(term) >= 4)


@dataclass(frozen=True)
class Support:
    supported: bool
    missing: tuple[str, ...] = ()
    word_share: float = 1.0


def support(
    sentence: str,
    source: SourceText,
    terms: Terms | None = None,
    given: Terms | None = None,
    document: SourceText | None = None,
) -> Support:
    """Whether `source` says what `sentence` says: all its numbers, codes and names, and
    enough of its content words (or, in Chinese, of its character bigrams). `given`: the
    question's terms; its numbers, codes and names may be restated without the source
    repeating them ("the MMEL for the 737 MAX was published on April 10, 2020"), since a
    question naming what no document holds is refused before (missing_terms)."""
    terms = terms or key_terms(sentence)
    exempt = given.strict if given is not None else frozenset()
    missing = [n for n in terms.numbers - exempt if not source.has(n, "number")]
    missing += [c for c in terms.codes - exempt if not source.has(c, "code")]
    missing += [n for n in terms.names - exempt if not source.has(n, "name")]
    missing += [o for o in terms.words & ORDINALS if not source.has(o, "word")]
    plain = terms.words - terms.names
    # The question's own words restated ("the most the company will pay per night for a
    # hotel in Munich is 180 EUR") are held to the rule below, not to the source's wording.
    own = plain - given.words if given is not None else plain
    found = sum(source.has(w, "word") for w in own)
    share = found / len(own) if own else 1.0
    # A sentence that states a value of the source ("The limit is 600 V") may word one thing
    # its own way ("limit" for "maximum").
    if not missing and (terms.numbers | terms.codes) - exempt and len(own) - found <= 1:
        share = max(share, WORD_SUPPORT)
    cjk_ok = True
    chars = {c for gram in terms.cjk for c in gram} - _CJK_FUNCTION_CHARS
    if chars and source.cjk:
        source_chars = {c for gram in source.cjk for c in gram}
        cjk_ok = len(chars & source_chars) / len(chars) >= CJK_SUPPORT
    # A sentence in another script than its source (a Chinese answer from an English page)
    # is held to its numbers, codes and names, and needs one the question did not give:
    # without one nothing of it can be checked ("首席执行官是销售经理").
    cross_script = bool(terms.cjk) and not source.cjk
    if cross_script and own:
        share = max(share, 1.0 if not missing else 0.0)
    if cross_script and not (terms.strict - exempt):
        missing.append("(nothing checkable across languages)")
    # The question's own words that the answer restates are what it claims to be about: one
    # that its source's whole document never uses means it answers another question ("the
    # meal allowance … is $907.96" from an airfare row); of four or more, one may be the
    # question's own wording echoed ("the most the company will pay per night …").
    # Tuned on the public set and the samples (RESULTS.md).
    restated = plain & given.words if given is not None else frozenset()
    unused = sum(not (source.has(w, "word") or (document is not None and document.has(w, "word"))) for w in restated)
    about_ok = unused <= (1 if len(restated) >= 4 else 0)
    ok = not missing and share >= WORD_SUPPORT and about_ok and cjk_ok and bool(terms.strict or plain or terms.cjk)
    return Support(ok, tuple(sorted(missing)), share)


def missing_terms(question: str, texts: Sequence[str | SourceText]) -> list[str]:
    """The question's names, codes and numbers that none of `texts` contains."""
    terms = key_terms(question)
    months = set(_MONTH_NUMBER_RE.findall(normalize_for_match(question)))
    # "一次", "一个" (once, a/one) are how Chinese counts, not a figure the question gives.
    counted_one = {"1"} - set(_NUMBER_RE.findall(fold_forms(question)))
    sources = [text if isinstance(text, SourceText) else SourceText.of(text) for text in texts]
    missing = []
    for kind, values in (("number", terms.numbers - months - counted_one), ("code", terms.codes), ("name", terms.names)):
        for value in sorted(values):
            if not any(source.has(value, kind) for source in sources):
                missing.append(value)
    # A Chinese question's month ("2015年12月") is not a name to look up, but a month the
    # documents never write, in any form, is as absent as an English question's "December".
    for month in sorted(months, key=int):
        if 1 <= int(month) <= 12 and not any(_writes_month(source.normalized, int(month)) for source in sources):
            missing.append(f"{int(month)}月")
    return missing


def _writes_month(normalized: str, month: int) -> bool:
    """Whether a normalised text writes the month: "12月", "December"/"Dec", 12/3/2015, 2015-12."""
    full = _MONTHS[month - 1]
    names = f"{full}|{full[:3]}" + ("|sept" if month == 9 else "")
    return bool(
        re.search(rf"(?<!\d)0?{month}\s*月", normalized)
        or re.search(rf"\b(?:{names})\b", normalized)
        or re.search(rf"(?<![\d./-])0?{month}[/-]\d{{1,2}}[/-]\d{{2,4}}(?![\d/-])", normalized)
        or re.search(rf"(?<!\d)(?:19|20)\d\d\s*[-/.年]\s*0?{month}(?!\d)", normalized)
    )


# ---------------------------------------------------------------- the quote


@dataclass(frozen=True)
class _Unit:
    source: Source
    rank: int
    start: int
    end: int

    @property
    def text(self) -> str:
        return self.source.text[self.start : self.end]


def _units(source: Source) -> list[tuple[int, int]]:
    """Sentences of a source, and each line of a table or of a form as its own unit."""
    text = source.text
    spans: list[tuple[int, int]] = []
    position = 0
    block_start = 0
    lines = text.split("\n")
    for line in lines + [None]:  # type: ignore[list-item]
        is_record = line is not None and ("|" in line or re.match(r"^\s*[^:：]{1,60}[:：]\s*\S", line) is not None)
        if line is None or is_record:
            block = text[block_start:position]
            spans += [(block_start + s, block_start + e) for s, e in sentence_spans(block)]
            if line is not None and line.strip():
                lead = len(line) - len(line.lstrip())
                spans.append((position + lead, position + len(line.rstrip())))
            if line is not None:
                block_start = position + len(line) + 1
        if line is not None:
            position += len(line) + 1
    result = []
    for start, end in spans:
        words = list(re.finditer(r"\S+", text[start:end]))
        if len(words) <= QUOTE_MAX_WORDS or _is_record(text[start:end]):
            result.append((start, end))
            continue
        # An overlong "sentence" (a transcript with line numbers, a form, text with no stops):
        # overlapping windows of words, so that the quote stays short.
        step = QUOTE_WINDOW_WORDS // 2
        for first in range(0, max(1, len(words) - step), step):
            window = words[first : first + QUOTE_WINDOW_WORDS]
            result.append((start + window[0].start(), start + window[-1].end()))
    return result


_RECORD_CELL_RE = re.compile(r"\s+\|\s+")


def _is_record(line: str) -> bool:
    """A table row or form line as ingest writes it: "Label: value | Label: value"."""
    return " | " in line and ":" in line


def _values_only(line: str) -> str:
    """A record's values without their column labels: a label that every row repeats
    ("Layoff/Closure:") must not count as the row saying it."""
    return " | ".join(cell.split(": ", 1)[-1] for cell in _RECORD_CELL_RE.split(line))


def _trim_record(line: str, weights: dict[tuple[str, str], float], wanted: str | None, question: Terms) -> str:
    """A long row cut to its first cell (the row's label) and the cells that match the
    question or hold the value asked for, "…" between them; every cell stays verbatim."""
    cells = _RECORD_CELL_RE.split(line)
    if len(line.split()) <= QUOTE_MAX_WORDS or len(cells) < 3:
        return line
    keep = [0]
    for index, cell in enumerate(cells[1:], start=1):
        cell_text = SourceText.of(cell)
        if any(_found(cell_text, kind, term) for kind, term in weights) or (
            wanted == "quantity" and re.search(r"\btotals?\b|合计|总计", cell, re.IGNORECASE)
        ):
            keep.append(index)
    pieces = []
    for position, index in enumerate(keep):
        if position and index != keep[position - 1] + 1:
            pieces.append("…")
        pieces.append(cells[index])
    if keep[-1] != len(cells) - 1:
        pieces.append("…")
    return " | ".join(pieces)


@dataclass
class Evidence:
    """What the sources say about a question, decided before and after the model writes."""

    quote: Quote | None
    missing: list[str] = field(default_factory=list)  # question terms no source contains
    wants: str | None = None  # "quantity", "date", "code", "person", "entity" or None
    documents: dict[str, SourceText] = field(default_factory=dict)  # file name -> its whole text
    # The question's words are Chinese and no candidate has any: only its names and numbers
    # could be matched, too little for a quote to stand as the answer (it may still be shown).
    cross_lingual: bool = False

    @property
    def absent(self) -> bool:
        return bool(self.missing)

    @property
    def extractable(self) -> bool:
        """Whether the quote may stand as the answer: it covers the question well and holds
        the kind of value asked for, which only a question that asks for one can check
        ("What was the final judgment?" is not answered by a sentence that names the case)."""
        return (
            self.quote is not None
            and not self.missing
            and self.wants is not None
            and self.quote.score >= EXTRACT_MIN_SCORE
            and not self.cross_lingual
        )


def wanted_kind(question: str) -> str | None:
    if _CODE_QUESTION_RE.search(question):
        return "code"
    if _DATE_RE.search(question):
        return "date"
    if _QUANTITY_RE.search(question):
        return "quantity"
    if _WHO_RE.search(question):
        return "person"
    if _WHICH_RE.search(question):
        return "entity"
    return None


def _gives(kind: str | None, unit_text: str, question_terms: Terms) -> bool:
    """Whether a unit holds the kind of value the question asks for (beyond what it repeats)."""
    if kind is None:
        return True
    terms = key_terms(unit_text)
    if kind in ("quantity", "code"):
        # A year is a date, and "表7.7" a reference, not the quantity asked for.
        references = set(_REFERENCE_NUMBER_RE.findall(normalize_for_match(unit_text)))
        counts = {n for n in terms.numbers - question_terms.numbers - references if not _YEAR_RE.fullmatch(n)}
        return (
            bool(counts)
            or (kind == "code" and bool(terms.codes - question_terms.codes))
            or bool(re.search(r"[零〇一二两三四五六七八九十百千万]", unit_text) and _CJK_RE.search(unit_text))
        )
    if kind == "date":
        normalized = unit_text.lower()
        return any(re.search(rf"\b{m}\b", normalized) for m in _MONTHS) or bool(
            re.search(
                r"\d{1,2}[/-]\d{1,2}[/-]\d{2,4}|\d{4}年|\d+月|\d+日|\d{1,2}:\d{2}|\b(19|20)\d\d\b"
                r"|\b(week|day|quarter|q)\s*\d+|\b(spring|summer|autumn|fall|winter|yesterday|today|tomorrow|daily|weekly|monthly|yearly|annually)\b"
                r"|\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?\b|星期|周[一二三四五六日]",
                normalized,
            )
        )
    if kind == "person":
        return bool(terms.names - question_terms.names)
    if kind == "entity":
        return bool((terms.names | terms.codes) - question_terms.strict) or bool(_topic_bigrams(terms.cjk) - question_terms.cjk)
    return True


def _weights(terms: Terms, units: Sequence[SourceText]) -> dict[tuple[str, str], float]:
    """Each question term's weight: its kind (names, numbers and codes count double, Chinese
    bigrams half) times its rarity among the candidate units (inverse document frequency),
    so that "Texas" outweighs "NICS checks" when every row of the NICS table says the latter."""
    kinds: dict[tuple[str, str], float] = {}
    for number in terms.numbers:
        kinds[("number", number)] = 2.0
    for code in terms.codes:
        kinds[("code", code)] = 2.0
    for name in terms.names:
        kinds[("name", name)] = 2.0
    for word in terms.words - terms.names:
        kinds[("word", word)] = 1.0
    for gram in _topic_bigrams(terms.cjk):
        kinds[("cjk", gram)] = 0.5
    count = len(units)
    weights = {}
    for (kind, term), weight in kinds.items():
        frequency = sum(1 for unit in units if _found(unit, kind, term))
        if frequency == 0:
            if kind == "cjk":
                continue  # a bigram of the question's own phrasing, in no source: noise
            # A word no candidate has weighs as a rare one: it lowers every unit's coverage
            # (the question may ask what the sources do not say) without swamping it.
            frequency = 1
        weights[(kind, term)] = weight * math.log((count + 1) / (frequency + 0.5))
    return weights


def _found(text: SourceText, kind: str, term: str) -> bool:
    return term in text.cjk if kind == "cjk" else text.has(term, kind)


def _coverage(weights: dict[tuple[str, str], float], unit: SourceText, context: SourceText) -> float:
    """Weighted share of the question's terms in the unit; terms only in the unit's wider
    context (its chunk, heading path and file name) count half."""
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    got = 0.0
    for (kind, term), weight in weights.items():
        got += weight if _found(unit, kind, term) else (weight * 0.5 if _found(context, kind, term) else 0.0)
    return got / total


def find_evidence(
    question: str,
    sources: Sequence[Source],
    documents: Mapping[str, str] | None = None,
    also: str | None = None,
) -> Evidence:
    """The best quote for `question` among `sources` (best first), and the question's terms
    that are absent. documents: file name -> whole text of each source's document; a question
    term in none of them is absent (with no documents given: in none of the sources).
    also: another wording of the question (its English translation), whose terms join the
    question's in choosing the quote (not in deciding what is absent)."""
    text_sources = [s for s in sources if s.text]
    context_texts = [f"{s.text}\n{s.heading_path}\n{s.filename}" for s in text_sources]
    # Each document normalised once: for the absent terms here and the answer check later.
    whole = {name: SourceText.of(text) for name, text in (documents or {}).items()}
    if whole:
        missing = missing_terms(question, [*whole.values(), *context_texts])
    else:
        missing = missing_terms(question, context_texts) if text_sources else []
    kind = wanted_kind(f"{question} {also}" if also else question)
    terms = key_terms(f"{question}\n{also}" if also else question)
    units = [_Unit(source, rank, start, end) for rank, source in enumerate(text_sources) for start, end in _units(source)]
    unit_texts = [SourceText.of(_values_only(unit.text) if _is_record(unit.text) else unit.text) for unit in units]
    contexts = [SourceText.of(text) for text in context_texts]
    weights = _weights(terms, unit_texts)
    best: tuple[float, float, _Unit] | None = None
    for unit, unit_text in zip(units, unit_texts):
        score = _coverage(weights, unit_text, contexts[unit.rank])
        if not _gives(kind, unit.text, terms):
            score *= 0.5
        # Equal coverage: the better-ranked source wins (a tie-break, not a handicap).
        ranked = score - 0.001 * unit.rank
        if best is None or ranked > best[0]:
            best = (ranked, score, unit)
    quote = None
    if best is not None and best[1] >= QUOTE_MIN_SCORE:
        unit = best[2]
        quote = Quote(
            source_number=unit.source.number,
            chunk_id=unit.source.chunk_id,
            filename=unit.source.filename,
            page=unit.source.page,
            text=_trim_record(unit.text.strip(), weights, kind, terms) if _is_record(unit.text) else unit.text.strip(),
            score=round(best[1], 3),
        )
    cross_lingual = also is None and bool(_topic_bigrams(terms.cjk)) and not any(text.cjk for text in unit_texts)
    return Evidence(quote, missing, kind, whole, cross_lingual)


def gives_wanted_value(question: str, answer: str) -> bool:
    """Whether an answer holds the kind of value its question asks for (a number for "how
    many", a date for "when", a name for "who"); a supported sentence that does not is no answer."""
    return _gives(wanted_kind(question), answer, key_terms(question))


def quote_answer(quote: Quote) -> str:
    """The extractive answer: the quote verbatim, with its citation."""
    text = " ".join(quote.text.split())
    return f"“{text}” [{quote.source_number}]"
