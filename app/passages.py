"""Sources as other tools receive them: the OpenAI-compatible endpoint (app.openai_api) and
the MCP server (app.mcp_server) hand out the same fields for a passage found or cited."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.schemas import Answer, Quote, Source

# The bound POST /api/ask puts on a question, kept by the other surfaces that take one.
MAX_QUESTION_CHARS = 4000


class Passage(BaseModel):
    number: int = Field(description="the source number: the answer text cites it as [number]")
    file: str
    page: int | None = Field(description="1-based page (slide for PPTX); null where the file has none")
    collection: str
    section: str = Field("", description="the headings above the passage, e.g. 'Travel policy > Hotels'")
    score: float = Field(description="the reranker's relevance score: higher is closer to the question")
    text: str = Field(description="the passage as it stands in the document")
    chunk_id: int = Field(description="opens the cited page: GET /api/chunks/{chunk_id}/view")
    quote: str | None = Field(None, description="the verified sentence(s) of this passage that support the answer, if any")


def passage(source: Source, quote: Quote | None = None) -> Passage:
    quoted = quote.text if quote is not None and quote.source_number == source.number else None
    return Passage(
        number=source.number,
        file=source.filename,
        page=source.page,
        collection=source.collection,
        section=source.heading_path,
        score=source.score,
        text=source.text,
        chunk_id=source.chunk_id,
        quote=quoted,
    )


def cited_passages(answer: Answer) -> list[Passage]:
    """The sources the answer's [n] marks point at (none for a refusal), in citation order."""
    return [passage(source, answer.quote) for source in answer.cited_sources]


def quote_line(quote: Quote) -> str:
    """The verified quote on one line: “…” — [n] file, p. N."""
    return f"“{' '.join(quote.text.split())}” — [{quote.source_number}] {quote.label}"
