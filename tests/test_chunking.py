from ingest.chunking import approximate_token_counter, chunk_pages
from ingest.types import PageText


def _page(n_sentences: int, page: int = 1) -> PageText:
    return PageText(page=page, text=" ".join(f"Sentence number {i} talks about topic {i}." for i in range(n_sentences)))


def test_chunks_stay_within_budget_and_overlap():
    chunks = chunk_pages([_page(60)], approximate_token_counter, max_tokens=50, overlap_tokens=12)
    assert len(chunks) > 5
    for chunk in chunks:
        assert approximate_token_counter([chunk.text])[0] <= 50
    # consecutive chunks share text (overlap) but each one moves forward
    for first, second in zip(chunks, chunks[1:]):
        assert second.char_start < first.char_end
        assert second.char_start > first.char_start


def test_every_sentence_is_in_some_chunk_and_offsets_point_at_it():
    page = _page(30)
    chunks = chunk_pages([page], approximate_token_counter, max_tokens=40, overlap_tokens=8)
    joined = " ".join(c.text for c in chunks)
    for i in range(30):
        assert f"Sentence number {i} talks" in joined
    for chunk in chunks:
        assert " ".join(page.text[chunk.char_start : chunk.char_end].split()) == chunk.text


def test_chunks_never_cross_pages_and_keep_page_numbers():
    chunks = chunk_pages([_page(10, page=1), PageText(page=2, text=""), _page(10, page=3)], approximate_token_counter, 30, 5)
    assert {c.page for c in chunks} == {1, 3}
    assert all("Sentence" in c.text for c in chunks)


def test_an_overlong_run_on_line_is_split_not_dropped():
    table_row = " | ".join(f"cell{i}" for i in range(400))
    chunks = chunk_pages([PageText(page=1, text=table_row)], approximate_token_counter, max_tokens=60, overlap_tokens=10)
    assert len(chunks) > 3
    assert "cell399" in chunks[-1].text and "cell0" in chunks[0].text
