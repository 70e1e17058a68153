"""Tokenization shared by the collection-wide keyword index and the lexical reranker.

English: lower-cased words reduced to their Snowball stems ("studies", "studied" -> "studi"; PyStemmer,
the C build of the Snowball algorithms), with codes such as "e-214", "hx-fan-77" and "2.5" kept whole
*and* split into their parts of two or more characters, so "HX-FAN-77" matches both the exact code and "fan".
Chinese has no spaces: every CJK character is a token (recall) and every pair of adjacent
characters is one too (precision: "逆变器" should outrank texts that merely contain "变").

Chunks and queries pass through the same ``fold_forms`` first, so the forms one fact takes
in different hands give the same tokens: full-width "ＳＸ－４００" is "sx-400", traditional
"設備" is "设备", "1,234.56" is "1234.56". Only the tokens change; chunk text stays verbatim.
"""

from __future__ import annotations

import re
import threading

import Stemmer

from ingest.sentences import fold_forms

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# The Latin alternative excludes CJK characters (they are \w too), so "SX-400型号" is the
# code "sx-400" and the word "型号", not one token "sx-400型号" that no query would repeat.
_TOKEN_RE = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+(?:[-.][^\W_{_CJK}]+)*", re.UNICODE)
_CJK_RE = re.compile(rf"[{_CJK}]")
# Stems let "mutations" match "mutated": BM25 alone went from 0.626 to 0.650 nDCG@10 on SciFact
# and from 0.830 to 0.933 on the samples (benchmarks/RESULTS.md). Codes and numbers stay whole.
# A Stemmer holds mutable buffers and a cache and is not thread-safe: one per thread.
_stemmers = threading.local()


def _stem(word: str) -> str:
    stemmer = getattr(_stemmers, "english", None)
    if stemmer is None:
        stemmer = _stemmers.english = Stemmer.Stemmer("english")
    return stemmer.stemWord(word)


def tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    for match in _TOKEN_RE.finditer(fold_forms(text)):
        token = match.group(0)
        if _CJK_RE.match(token):
            tokens.extend(token)
            tokens.extend(token[i : i + 2] for i in range(len(token) - 1))
            continue
        tokens.append(_stem(token) if token.isascii() and token.isalpha() else token)
        if "-" in token or "." in token:
            # One-character parts ("e" of "e-214", "5" of "2.5") would match nearly every code.
            tokens.extend(part for part in re.split(r"[-.]", token) if len(part) > 1)
    return tokens
