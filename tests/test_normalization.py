"""Mixed input: full-width forms, traditional characters and Chinese-English codes match the
way the documents write them, in BM25 (retrieval.tokenize) and in the evidence check
(ingest.sentences.normalize_for_match, used by app.generation.evidence)."""

from __future__ import annotations

from app.generation.evidence import SourceText, key_terms, missing_terms, support
from ingest.chunking import chunk_pages
from ingest.sentences import normalize_for_match
from ingest.types import PageText
from retrieval.keyword import KeywordIndex, search_keyword
from retrieval.tokenize import tokenize


def test_a_traditional_character_question_finds_the_simplified_page_by_bm25():
    index = KeywordIndex(
        [
            # Shares only the characters both scripts write alike (多久一次, 定, 程) with the question.
            (1, "多久一次的定期检查由工程师决定，检查记录保存一年。"),
            (2, "设备维护规程规定：滤网每两周清洁一次。"),
            (3, "差旅政策：酒店每晚上限180欧元。"),
        ]
    )
    hits = search_keyword([index], "設備維護規程規定濾網多久清潔一次？", k=3)
    assert hits[0].chunk_id == 2, hits
    assert tokenize("設備維護") == tokenize("设备维护")


def test_a_full_width_code_matches_the_half_width_code_in_bm25():
    index = KeywordIndex([(1, "故障代码E-215表示电网电压过高。"), (2, "故障代码E-214表示绝缘电阻过低。")])
    hits = search_keyword([index], "故障代码Ｅ－２１４是什么意思？", k=2)
    assert hits[0].chunk_id == 2, hits
    assert tokenize("ＳＸ－４００\u3000１２３。") == tokenize("SX-400 123.")


def test_an_english_question_finds_the_passage_that_words_it_in_another_form_by_bm25():
    index = KeywordIndex(
        [
            (1, "The gene bank of the region lists the committee members."),
            (2, "Cells whose genes mutated after treatment were studied."),
            (3, "The minutes of the meeting."),
            (4, "The budget of the year."),
        ]
    )
    # Passage 1 shares the question's exact words; passage 2 shares only their stems.
    hits = search_keyword([index], "studies of the gene mutations", k=2)
    assert [hit.chunk_id for hit in hits][:1] == [2], hits
    # Codes, numbers and Chinese are never stemmed.
    assert {"hx-fan-77", "2.5", "设备"} <= set(tokenize("HX-FAN-77 runs at 2.5 设备"))


def test_chinese_english_codes_tokenize_to_the_code_with_or_without_a_space():
    assert {"sx-400", "sx", "400", "型号"} <= set(tokenize("型号SX-400"))
    # A code before Chinese was one token "sx-400型号" that no query repeats.
    assert {"sx-400", "型号"} <= set(tokenize("SX-400型号"))
    assert set(tokenize("型号SX-400")) == set(tokenize("型号 SX-400")) == set(tokenize("型号 ＳＸ－４００"))
    # A number keeps its thousands separator in one form and not in another.
    assert "1234.56" in tokenize("单价为1,234.56元") and "1234.56" in tokenize("单价 1234.56 元")


def test_match_forms_agree_across_scripts_widths_and_spacing():
    assert normalize_for_match("設備維護規程") == normalize_for_match("设备维护规程")
    assert normalize_for_match("型号SX-400") == normalize_for_match("型号 SX-400") == normalize_for_match("型號 ＳＸ－４００")
    assert normalize_for_match("三架飞机") == "3架飞机"  # digits next to Chinese stay joined


def test_the_evidence_check_finds_a_code_written_against_chinese():
    assert "sx-400" in key_terms("型号SX-400的额定功率是多少？").codes
    assert "hx-fan-77" in key_terms("备件HX-FAN-77型风扇").codes
    # The question's code is in the retrieved page, written with a space and full width.
    assert missing_terms("型号SX-400的额定功率是多少？", ["型号 ＳＸ－４００ 的额定功率为 5.5 千瓦。"]) == []


def test_a_traditional_full_width_answer_is_supported_by_the_simplified_source():
    source = SourceText.of("设备维护规程规定：型号 SX-400 的滤网每两周清洁一次，重量为 1,234.56 千克。")
    # Only 程, 定, 每, 一 and 次 are written alike in both scripts: too few characters without folding.
    assert support("設備維護規程規定濾網每兩週清潔一次。", source).supported
    assert support("型號ＳＸ－４００的重量為１２３４.５６千克。", source).supported
    # ...and a wrong value still is not.
    assert not support("型號ＳＸ－４００的重量為１２３５.５６千克。", source).supported


def test_matching_forms_never_reach_the_stored_chunk_text():
    pages = [
        PageText(page=1, text="設備維護規程：型號ＳＸ－４００的濾網每兩週清潔一次。"),
        PageText(page=2, text="差旅規定：出差多久需要審批，由部門經理決定的。"),
    ]
    chunks = chunk_pages(pages)
    hits = search_keyword([KeywordIndex((c.ordinal, c.text) for c in chunks)], "型号 SX-400 的滤网多久清洁", k=2)
    found = chunks[hits[0].chunk_id]
    # Found through the folded tokens, quoted in the source's own characters.
    assert found.page == 1 and found.text == pages[0].text
