"""Tokenization shared by the collection-wide keyword index and the lexical reranker.

English: lower-cased words, with codes such as "e-214", "hx-fan-77" and "2.5" kept whole
*and* split into their parts of two or more characters, so "HX-FAN-77" matches both the exact code and "fan".
Chinese has no spaces: every CJK character is a token (recall) and every pair of adjacent
characters is one too (precision: "逆变器" should outrank texts that merely contain "变").
"""

from __future__ import annotations

import re

_TOKEN_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[^\W_]+(?:[-.][^\W_]+)*", re.UNICODE)
_CJK_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    for match in _TOKEN_RE.finditer(text.lower()):
        token = match.group(0)
        if _CJK_RE.match(token):
            tokens.extend(token)
            tokens.extend(token[i : i + 2] for i in range(len(token) - 1))
            continue
        tokens.append(token)
        if "-" in token or "." in token:
            # One-character parts ("e" of "e-214", "5" of "2.5") would match nearly every code.
            tokens.extend(part for part in re.split(r"[-.]", token) if len(part) > 1)
    return tokens
