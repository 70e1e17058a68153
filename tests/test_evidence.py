"""Sentence splitting, normalisation and the evidence checks that decide answers on the sources."""

from app.generation.citations import check_citations
from app.generation.evidence import SourceText, find_evidence, key_terms, missing_terms, quote_answer
from app.generation.prompting import NOT_IN_SOURCES
from app.schemas import Source
from ingest.sentences import chinese_numeral_value, normalize_for_match, split_sentences


def _source(number: int, text: str, filename: str = "report.pdf", page: int = 1) -> Source:
    return Source(
        number=number, chunk_id=100 + number, collection="c", filename=filename, page=page, kind="text", text=text, score=1.0
    )


# ---------------------------------------------------------------- sentences


def test_sentences_keep_abbreviations_initials_decimals_and_addresses_whole():
    text = (
        "The meeting was held at 1309 S. Mary Avenue. Steven E. Mercer, Deputy Attorney General, argued "
        "for the petitioner. The fee is 2.5 EUR, approx. five times the old fee. Sen. Hawley paid 618.00 "
        "for the U.S. trip. It ended at 1:01 p.m. on Tuesday."
    )
    assert split_sentences(text) == [
        "The meeting was held at 1309 S. Mary Avenue.",
        "Steven E. Mercer, Deputy Attorney General, argued for the petitioner.",
        "The fee is 2.5 EUR, approx. five times the old fee.",
        "Sen. Hawley paid 618.00 for the U.S. trip.",
        "It ended at 1:01 p.m. on Tuesday.",
    ]


def test_a_unit_after_a_number_still_ends_its_sentence():
    assert split_sentences("The input limit is 600 V. Penguins enjoy jazz.") == [
        "The input limit is 600 V.",
        "Penguins enjoy jazz.",
    ]


def test_chinese_sentences_end_at_chinese_stops():
    assert split_sentences("养护工区一般设置在高速公路上。其他情况见表7.5；最后一句！") == [
        "养护工区一般设置在高速公路上。",
        "其他情况见表7.5；",
        "最后一句！",
    ]


def test_normalisation_unifies_the_forms_of_one_fact():
    assert normalize_for_match("146,982") == normalize_for_match("146982")
    assert normalize_for_match("$618.00") == "$618"
    assert normalize_for_match("ＳＸ－４００") == normalize_for_match("SX-400") == "sx-400"
    assert normalize_for_match("三架飞机") == "3架飞机"
    assert chinese_numeral_value("一百零五") == 105 and chinese_numeral_value("二〇二〇") == 2020
    assert chinese_numeral_value("两万三千") == 23000


def test_key_terms_of_a_sentence():
    terms = key_terms("The Wexford plant recorded 14 days without incident under code HX-FAN-77 [2].")
    assert "14" in terms.numbers and "2" not in terms.numbers  # the citation marker is no number
    assert "hx-fan-77" in terms.codes and "wexford" in terms.names


# ---------------------------------------------------------------- citations on evidence


def test_a_sentence_whose_number_is_not_in_its_source_is_dropped():
    sources = [_source(1, "The maximum operating temperature of the Kestrel-9 turbine is 742 degrees Celsius.")]
    assert check_citations("The maximum temperature is 742 degrees Celsius [1].", sources).supported
    checked = check_citations("The maximum temperature is 760 degrees Celsius [1].", sources)
    assert not checked.supported and checked.text == NOT_IN_SOURCES


def test_an_invented_answer_with_a_citation_is_refused():
    """The Norrland case: the model names a source that says nothing of the sort."""
    sources = [
        _source(1, "The Wexford plant recorded 14 days without incident."),
        _source(2, "The Kestrel-9 turbine runs at up to 742 degrees Celsius."),
    ]
    checked = check_citations("The chief executive of the Norrland office is [2].", sources)
    assert not checked.supported


def test_an_answer_about_another_one_of_a_series_is_refused():
    """The public set's na09: "the third accident" answered from the passage about the second,
    in a document that says "third" elsewhere (so the question was not refused as absent)."""
    second = "On March 10, 2019, the second accident, Ethiopian Airlines Flight 302, occurred."
    elsewhere = "The third design change is intended to ensure that the flightcrew has the means."
    sources = [_source(1, second)]
    documents = {"report.pdf": SourceText.of(f"{second}\n{elsewhere}")}
    question = "Which airline operated the third accident?"
    checked = check_citations("The third accident was Ethiopian Airlines Flight 302 [1].", sources, question, documents)
    assert not checked.supported and checked.text == NOT_IN_SOURCES
    assert check_citations("The second accident was Ethiopian Airlines Flight 302 [1].", sources, question, documents).supported


def test_a_wrong_citation_is_moved_to_the_source_that_supports_the_sentence():
    sources = [
        _source(1, "The Wexford plant recorded 14 days without incident.", page=1),
        _source(2, "The Kestrel-9 turbine runs at up to 742 degrees Celsius.", page=2),
    ]
    checked = check_citations("The Wexford plant recorded 14 days without incident [2].", sources)
    assert checked.supported and checked.cited == [1] and "[1]" in checked.text


def test_an_address_with_an_initial_is_not_cut_by_the_citation_check():
    sources = [_source(1, "The board meeting was held at 1309 S. Mary Avenue in Sunnyvale.")]
    checked = check_citations("The meeting was held at 1309 S. Mary Avenue [1].", sources)
    assert checked.text == "The meeting was held at 1309 S. Mary Avenue [1]."


def test_thousands_separators_and_chinese_numerals_count_as_the_same_number():
    sources = [_source(1, "Texas: Handgun 56941 | Totals 146982"), _source(2, "共有三架飞机受影响。")]
    assert check_citations("Texas had 146,982 checks in total [1].", sources).supported
    assert check_citations("受影响的飞机有3架[2]。", sources).supported


# ---------------------------------------------------------------- the quote and absent evidence


def test_the_quote_is_the_sentence_that_answers_the_question():
    sources = [
        _source(
            1,
            "The Kestrel-9 is built in Oslo. The maximum operating temperature of the Kestrel-9 turbine "
            "is 742 degrees Celsius. Service is yearly.",
        ),
        _source(2, "The Wexford plant recorded 14 days without incident."),
    ]
    evidence = find_evidence("What is the maximum operating temperature of the Kestrel-9 turbine?", sources)
    assert evidence.quote is not None and evidence.quote.source_number == 1
    assert evidence.quote.text == "The maximum operating temperature of the Kestrel-9 turbine is 742 degrees Celsius."
    assert evidence.quote.text in sources[0].text  # verbatim
    assert evidence.extractable
    assert quote_answer(evidence.quote).endswith("[1]")


def test_a_how_many_question_prefers_the_sentence_with_a_number():
    sources = [
        _source(1, "The Wexford plant is known for its safety record. The Wexford plant recorded 14 days without incident.")
    ]
    evidence = find_evidence("How many days without incident did the Wexford plant record?", sources)
    assert evidence.quote is not None and "14" in evidence.quote.text


def test_a_table_row_is_its_own_quote():
    table = (
        "NICS firearm checks, November 2015\nState: Texas | Handgun: 56,941 | Totals: 146,982\n"
        "State: Wyoming | Handgun: 1,897 | Totals: 5,017"
    )
    evidence = find_evidence("What was Wyoming's total number of NICS checks?", [_source(1, table)])
    assert evidence.quote is not None and evidence.quote.text == "State: Wyoming | Handgun: 1,897 | Totals: 5,017"


def test_a_question_about_something_no_source_mentions_is_evidence_absent():
    sources = [_source(1, "The FAA estimates that this AD affects 73 airplanes of U.S. registry.")]
    assert missing_terms("How many airplanes of Canadian registry does the AD affect?", [sources[0].text]) == ["canadian"]
    assert find_evidence("How many airplanes of Canadian registry does the AD affect?", sources).absent
    assert not find_evidence("How many airplanes of U.S. registry does the AD affect?", sources).absent
    # "11月" is a month, not a number the source must contain.
    assert not missing_terms("2015年11月得克萨斯州的NICS背景调查总数是多少？", ["NICS checks November 2015: Texas 146,982"])
    # ... but a month that no document writes, in any form, is absent like "December" in English.
    assert missing_terms("2015年12月得克萨斯州的NICS背景调查总数是多少？", ["NICS checks November 2015: Texas 146,982"]) == [
        "12月"
    ]
    for written in ("报告日期：2015年12月3日", "Report of Dec. 3, 2015", "printed 12/03/2015", "period 2015-12"):
        assert not missing_terms("2015年12月的背景调查总数是多少？", [written]), written


def test_no_quote_when_nothing_covers_the_question():
    sources = [_source(1, "Hotel costs in Munich are reimbursed up to 180 EUR per night.")]
    assert find_evidence("Who is the chief executive of the Norrland office?", sources).quote is None


def test_an_answer_may_restate_the_question_but_not_invent_its_key_words():
    sources = [
        _source(1, "The new master minimum equipment list (MMEL), approved by the FAA, was published on April 10, 2020."),
        _source(2, "Sen. Hawley: train fare Washington DC to New York and return, 618.00."),
    ]
    question = "When was the new MMEL for the 737 MAX published?"
    restated = check_citations("The new MMEL for the 737 MAX was published on April 10, 2020 [1].", sources, question)
    assert restated.supported and restated.cited == [1]
    # The question's "annual salary" is no name: the answer must find those words in its source.
    invented = check_citations(
        "Senator Hawley's annual salary is 618.00 [2].",
        sources,
        "What is Senator Hawley's annual salary according to the expenditure report?",
    )
    assert not invented.supported


def test_sentences_about_where_the_answer_stands_are_left_out():
    sources = [_source(1, "Ethiopian Airlines Flight 302 crashed; all 157 people on board were killed.")]
    checked = check_citations("The accident killed 157 people [1]. This information is found in source [1].", sources)
    assert checked.text == "The accident killed 157 people [1]."
