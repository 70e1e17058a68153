"""Sentence boundaries and the text normalisation that matching across sources relies on.

A sentence ends at . ! ? followed by whitespace, unless the word before the stop is an
abbreviation ("No.", "Sen.", "approx."), an initial ("Steven E. Mercer", "1309 S. Mary
Avenue"), or the next word starts in lower case; it always ends at the Chinese stops
。！？； and at a blank line. Decimals (2.5, 1:01) never split, since no space follows the stop.

``normalize_for_match`` maps the forms the same fact takes in a question, a source and an
answer onto one: NFKC (full-width digits and letters), lower case, thousands separators
dropped, trailing decimal zeros dropped ("618.00" = "618"), simple Chinese numerals before a
counter word turned into digits ("三架" = "3架"), every dash a hyphen ("2018–23–51"),
traditional characters as simplified ("設備" = "设备") and a space between Chinese and a
Latin word ("型号SX-400" = "型号 sx-400"). ``fold_forms`` is the part of it that BM25 tokens
share. Both only ever build matching forms: stored chunk text, which citations quote, keeps
the source's own characters.
"""

from __future__ import annotations

import re
import threading
import unicodedata

import opencc

# Words that end with a full stop without ending the sentence (compared lower case, without the stop).
ABBREVIATIONS = frozenset(
    """
    mr mrs ms dr prof sr jr st mt ft no nos vs etc inc ltd co corp dept univ assn bros ave blvd rd hwy
    fig figs vol vols pp p ch sec secs art para approx est ref refs ed eds rev
    jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thur thurs fri sat sun
    sen rep gov gen col lt sgt capt cmdr adm hon pres supt atty esq messrs
    e.g i.e u.s u.k u.n a.m p.m d.c n.y cf al v
    """.split()
)

_STOP_RE = re.compile(r"[.!?](?=[\"'”’)\]]*\s)|[。！？；]", re.DOTALL)
_BLANK_LINE_RE = re.compile(r"\n[ \t]*\n")
_WORD_BEFORE_RE = re.compile(r"([\w.]+)$")


def _is_boundary(text: str, stop: int) -> bool:
    """Whether the stop character at `stop` ends a sentence."""
    char = text[stop]
    if char in "。！？；":
        return True
    if char in "!?":
        return True
    before = _WORD_BEFORE_RE.search(text, 0, stop)
    word = before.group(1).lower() if before else ""
    # "v." is versus ("Knowles v. Mirzayance"); "V." after a number is volts.
    if word in ABBREVIATIONS and before is not None and before.group(1) != "V":
        return False
    # An initial ("E." in "Steven E. Mercer") or a compass point in an address ("1309 S. Mary
    # Avenue"); not a unit after a number ("600 V. The next").
    if len(word) == 1 and word.isalpha():
        previous = text[: before.start()].split()[-1:] if before else []
        if previous and (previous[0][:1].isupper() or (previous[0][-1:].isdigit() and word in "nsew")):
            return False
    # U.S., e.g.: letters separated by stops.
    if re.fullmatch(r"(?:[a-z]\.)+[a-z]", word):
        return False
    following = text[stop + 1 :].lstrip("\"'”’)] \t\r\n")
    # "approx. five", "vs. the": a lower-case word after the stop continues the sentence.
    if following[:1].islower():
        return False
    return True


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text`, stripped of surrounding whitespace."""
    cuts = [0]
    for match in _BLANK_LINE_RE.finditer(text):
        cuts.append(match.end())
    for match in _STOP_RE.finditer(text):
        if _is_boundary(text, match.start()):
            end = match.end()
            # Closing quotes and brackets stay with their sentence.
            while end < len(text) and text[end] in "\"'”’)]」』":
                end += 1
            cuts.append(end)
    cuts.append(len(text))
    spans = []
    for start, end in zip(sorted(set(cuts)), sorted(set(cuts))[1:]):
        piece = text[start:end]
        stripped = piece.strip()
        if not stripped:
            continue
        lead = len(piece) - len(piece.lstrip())
        spans.append((start + lead, start + lead + len(stripped)))
    return spans


def split_sentences(text: str) -> list[str]:
    return [text[start:end] for start, end in sentence_spans(text)]


# ---------------------------------------------------------------- normalisation

_THOUSANDS_RE = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_TRAILING_ZEROS_RE = re.compile(r"(\d)\.0+(?!\d)|(\d\.\d*?[1-9])0+(?!\d)")
_CJK_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CJK_UNITS = {"十": 10, "百": 100, "千": 1000}
_CJK_NUMERAL_RE = re.compile(r"[零〇一二两三四五六七八九十百千万亿]+(?=[个位年月日天号人架次处家名项条台辆所座栋层公顷米元倍])")


def chinese_numeral_value(numeral: str) -> int | None:
    """The value of a Chinese numeral such as 三, 十二, 一百零五, 两万三千, 二〇二〇; None if it is not one."""
    if any(char not in _CJK_DIGITS and char not in _CJK_UNITS and char not in "万亿" for char in numeral):
        return None
    if not any(char in _CJK_UNITS or char in "万亿" for char in numeral):
        return int("".join(str(_CJK_DIGITS[char]) for char in numeral))  # 二〇二〇: digit by digit
    total, section, digit = 0, 0, 0
    for char in numeral:
        if char in _CJK_DIGITS:
            digit = _CJK_DIGITS[char]
        elif char in _CJK_UNITS:
            section += (digit or 1) * _CJK_UNITS[char]
            digit = 0
        else:  # 万 or 亿
            total += (section + digit) * (10_000 if char == "万" else 100_000_000)
            section, digit = 0, 0
    return total + section + digit


def _replace_chinese_numerals(text: str) -> str:
    def value(match: re.Match) -> str:
        number = chinese_numeral_value(match.group(0))
        return match.group(0) if number is None else str(number)

    return _CJK_NUMERAL_RE.sub(value, text)


_DASHES_RE = re.compile(r"[\u2010-\u2015\u2212\ufe58\ufe63\uff0d]")
_CJK_CHAR_RE = re.compile(r"[\u3400-\u9fff]")


def unify_dashes(text: str) -> str:
    """En and em dashes, minus signs and full-width hyphens as "-" (a PDF's "2018–23–51")."""
    return _DASHES_RE.sub("-", text)


def has_chinese(text: str) -> bool:
    return _CJK_CHAR_RE.search(text) is not None


_LATIN_WORD_RE = re.compile(r"[A-Za-z]{2,}")


def text_language(text: str) -> str:
    """ "zh" where Chinese characters are at least twice as many as Latin words (a Chinese word
    is about two characters; a Chinese sentence may name "FAA", an English one may copy a
    Chinese title), else "en"."""
    chinese = len(_CJK_CHAR_RE.findall(text))
    return "zh" if chinese and chinese >= 2 * len(_LATIN_WORD_RE.findall(text)) else "en"


_T2S: opencc.OpenCC | None = None
_T2S_LOCK = threading.Lock()


def to_simplified(text: str) -> str:
    """Traditional Chinese characters as simplified ("設備維護" -> "设备维护"), with OpenCC's
    phrase tables, since a character-by-character table gets one-to-many cases wrong
    ("乾燥" -> "干燥" but "乾隆" stays); text without Chinese is returned as it is."""
    global _T2S
    if not has_chinese(text):
        return text
    if _T2S is None:
        with _T2S_LOCK:
            if _T2S is None:
                _T2S = opencc.OpenCC("t2s.json")
    return _T2S.convert(text)


def fold_forms(text: str) -> str:
    """The writing-system variants of one text as one form: NFKC (full-width "ＳＸ－４００",
    "１２３" and ideographic punctuation widths), every dash a hyphen, lower case, simplified
    characters, no thousands separators ("1,234.56" = "1234.56")."""
    text = unify_dashes(unicodedata.normalize("NFKC", text)).lower()
    return _THOUSANDS_RE.sub("", to_simplified(text))


# A Latin word or code against Chinese: "型号SX-400型" has no word boundary around "sx-400"
# (CJK characters are \w too), so a code pattern anchored at \b would miss the code that
# "型号 SX-400 型" shows. Runs without a letter are left alone ("3架", "5.5千瓦"): number
# patterns need no boundary.
_CJK = "\u3400-\u9fff\uf900-\ufaff"
_LATIN_RUN_RE = re.compile(r"[a-z0-9](?:[a-z0-9./-]*[a-z0-9])?")


def _space_latin_runs(text: str) -> str:
    def pad(match: re.Match) -> str:
        run = match.group(0)
        if not re.search(r"[a-z]", run):
            return run
        before = match.start() > 0 and re.match(rf"[{_CJK}]", text[match.start() - 1]) is not None
        after = match.end() < len(text) and re.match(rf"[{_CJK}]", text[match.end()]) is not None
        return (" " if before else "") + run + (" " if after else "")

    return _LATIN_RUN_RE.sub(pad, text)


def normalize_for_match(text: str) -> str:
    text = fold_forms(text)
    text = _TRAILING_ZEROS_RE.sub(lambda m: m.group(1) or m.group(2), text)
    return _space_latin_runs(_replace_chinese_numerals(text))
