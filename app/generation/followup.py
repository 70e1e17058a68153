"""Follow-up questions made standalone before retrieval ("and its warranty?" -> "What is the
warranty of the Helios SX-400?"): retrieval sees one question, never the conversation."""

from __future__ import annotations

import re
from collections.abc import Sequence

from app.generation.base import Generator, generate

Turn = tuple[str, str]  # (question, answer)

REWRITE_PROMPT = (
    "You rewrite the user's follow-up question into one standalone question that can be understood "
    "without the conversation. Replace pronouns such as it, its, they, that with the thing they refer to. "
    "Keep names, product names, codes and numbers exactly. Reply with the rewritten question only."
)
# A small model only needs the last exchanges; long answers would just crowd the context.
MAX_TURNS = 3
MAX_ANSWER_CHARS = 300


def rewrite_messages(question: str, history: Sequence[Turn]) -> list[dict[str, str]]:
    lines = []
    for asked, answered in list(history)[-MAX_TURNS:]:
        lines.append(f"User: {asked.strip()}")
        lines.append(f"Assistant: {answered.strip()[:MAX_ANSWER_CHARS]}")
    conversation = "\n".join(lines)
    user = f"Conversation:\n{conversation}\n\nFollow-up question: {question.strip()}\nStandalone question:"
    return [{"role": "system", "content": REWRITE_PROMPT}, {"role": "user", "content": user}]


def _clean(text: str) -> str:
    line = next((line for line in text.strip().splitlines() if line.strip()), "")
    line = re.sub(r"^(standalone question|rewritten question|question)\s*:\s*", "", line.strip(), flags=re.I)
    return line.strip().strip('"“”').strip()


def standalone_question(generator: Generator, question: str, history: Sequence[Turn], max_new_tokens: int = 64) -> str:
    """The follow-up as a standalone question; the question itself when there is no history
    or the model's reply is unusable (empty, or a paragraph rather than a question)."""
    if not history:
        return question
    rewritten = _clean(generate(generator, rewrite_messages(question, history), max_new_tokens))
    if not rewritten or len(rewritten) > 4 * len(question) + 200:
        return question
    return rewritten
