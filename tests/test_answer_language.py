"""The answer speaks the asker's language: a Chinese question over English pages is answered,
refused or quoted in Chinese, an English one stays English. The model is the real packaged
generator, except where a test must fix what the model writes: there a fake generator
(named so) stands at the model boundary."""

from __future__ import annotations

from app.answer_eval import QaItem, score_answer
from app.generation.prompting import NOT_IN_SOURCES, NOT_IN_SOURCES_ZH, build_messages, question_language
from app.schemas import Answer, Source
from ingest.sentences import text_language
from tests.test_evidence_answers import FakeInventingGenerator, _with_generator, fresh_kb  # noqa: F401 - the fixture

ZH_TEMPERATURE = "Kestrel-9 涡轮机的最高工作温度是多少摄氏度？"


class FakeEnglishAnswerer(FakeInventingGenerator):
    """Stands in for a model that answers a Chinese question in English and, asked to
    translate, writes ``translation``."""

    def __init__(self, translation: str) -> None:
        super().__init__("The maximum operating temperature of the Kestrel-9 turbine is 742 degrees Celsius [1].")
        self.translation = translation

    def stream(self, messages, max_new_tokens):
        if "翻译" in str(messages[0]["content"]):
            yield self.translation
            return
        yield from super().stream(messages, max_new_tokens)


def _source(text: str) -> Source:
    return Source(number=1, chunk_id=1, collection="c", filename="a.pdf", page=1, kind="text", text=text, score=1.0)


def test_text_language_reads_the_script_not_a_copied_name():
    assert text_language("Kestrel-9 涡轮机的最高工作温度为742摄氏度 [1]。") == "zh"
    assert text_language("The standard 安徽省建设用地使用标准 lists 1.7333 hectares for each centre [1].") == "en"
    assert text_language(NOT_IN_SOURCES_ZH) == "zh" and text_language(NOT_IN_SOURCES) == "en"
    assert question_language("美国联邦航空管理局估计该737 MAX适航指令影响多少架飞机？") == "zh"


def test_the_prompt_asks_for_the_answer_in_the_question_language():
    english = _source("The Wexford plant recorded 14 days without incident.")
    chinese = _source("路段监控通信分中心的用地指标为1.7333公顷/处。")
    zh_prompt = build_messages("Wexford 工厂记录了多少天无事故？", [english])[1]["content"]
    assert "简体中文" in zh_prompt
    assert "complete English sentence" in build_messages("What is the land index of the centre?", [chinese])[1]["content"]
    # English over English keeps the prompt its measurements were made with.
    plain = build_messages("How many days without incident?", [english])[1]["content"]
    assert "简体中文" not in plain and "English sentence" not in plain
    # A follow-up made standalone in English still answers in the language it was asked in.
    follow = build_messages("How many days without incident?", [english], asked="那它呢？")[1]["content"]
    assert "简体中文" in follow


def test_a_chinese_question_over_an_english_page_is_answered_in_chinese(fresh_kb):
    answer = fresh_kb.ask(fresh_kb.system_user(), ZH_TEMPERATURE, ["fresh"])
    assert answer.supported and "742" in answer.text, answer.text
    assert text_language(answer.text) == "zh", answer.text
    assert {(s.filename, s.page) for s in answer.cited_sources} == {("kestrel.pdf", 2)}
    # The quote stays verbatim, in its source's language.
    assert answer.quote is not None and "742 degrees Celsius" in answer.quote.text


def test_a_chinese_question_the_documents_cannot_answer_is_refused_in_chinese(fresh_kb):
    answer = fresh_kb.ask(fresh_kb.system_user(), "Norrland 办事处的首席执行官是谁？", ["fresh"])
    assert not answer.supported and answer.text == NOT_IN_SOURCES_ZH, answer.text


def test_an_answer_in_the_sources_language_is_translated_when_the_translation_keeps_its_figures(fresh_kb):
    faithful = FakeEnglishAnswerer("Kestrel-9 涡轮机的最高工作温度为 742 摄氏度。")
    with _with_generator(fresh_kb, faithful) as kb:
        answer = kb.ask(kb.system_user(), ZH_TEMPERATURE, ["fresh"])
    assert answer.supported and answer.text == "Kestrel-9 涡轮机的最高工作温度为 742 摄氏度。 [1]", answer.text

    unfaithful = FakeEnglishAnswerer("Kestrel-9 涡轮机的最高工作温度为 724 摄氏度。")
    with _with_generator(fresh_kb, unfaithful) as kb:
        answer = kb.ask(kb.system_user(), ZH_TEMPERATURE, ["fresh"])
    # A translation that changed the figure is not shown: the checked answer is, as written.
    assert answer.supported and "742 degrees Celsius" in answer.text and "724" not in answer.text


def test_a_chinese_question_over_english_pages_is_not_answered_by_a_quote_alone(fresh_kb):
    """Only its names and numbers could be matched across languages: too little to stand as
    the answer when the model gives none."""
    with _with_generator(fresh_kb, FakeInventingGenerator("文档中不包含这个问题的答案。")) as kb:
        answer = kb.ask(kb.system_user(), "Norrland 办事处有多少名员工？", ["fresh"])
    assert not answer.extractive and answer.text == NOT_IN_SOURCES_ZH


def test_the_answer_eval_scores_the_answer_language():
    item = QaItem("zh", ZH_TEMPERATURE, "742", frozenset(), frozenset({"zh"}))
    english = score_answer(item, Answer(question=ZH_TEMPERATURE, text="It is 742 degrees Celsius [1].", supported=True), 1.0)
    chinese = score_answer(item, Answer(question=ZH_TEMPERATURE, text="最高工作温度为742摄氏度 [1]。", supported=True), 1.0)
    assert not english.language_match and chinese.language_match


def test_an_english_question_keeps_an_english_answer(fresh_kb):
    answer = fresh_kb.ask(fresh_kb.system_user(), "How many days without incident did the Wexford plant record?", ["fresh"])
    assert answer.supported and "14" in answer.text and text_language(answer.text) == "en", answer.text


class FakeTranslatingGenerator(FakeInventingGenerator):
    """Stands in for a model that, asked to translate a question into English, writes
    ``translation``, and otherwise answers with ``text``."""

    def __init__(self, translation: str, text: str) -> None:
        super().__init__(text)
        self.translation = translation

    def stream(self, messages, max_new_tokens):
        if "into English" in str(messages[0]["content"]):
            yield self.translation
            return
        yield from super().stream(messages, max_new_tokens)


SERVICE_ZH = "涡轮机多久由工厂自己的员工维修一次？"


def test_a_chinese_question_finds_its_english_sentence_through_the_translation(fresh_kb):
    faithful = FakeTranslatingGenerator(
        "How often is the turbine serviced by the plant's own staff?", "每4,000小时维修一次 [1]。"
    )
    with _with_generator(fresh_kb, faithful) as kb:
        answer = kb.ask(kb.system_user(), SERVICE_ZH, ["fresh"])
    assert answer.quote is not None and "serviced every 4,000 hours" in answer.quote.text, answer.quote
    assert (answer.quote.filename, answer.quote.page) == ("kestrel.pdf", 2)
    assert answer.supported and "4,000" in answer.text

    # A "translation" that answers instead (with a figure the question does not hold) is not searched.
    answering = FakeTranslatingGenerator("The turbine is serviced every 5,000 hours.", "每4,000小时维修一次 [1]。")
    with _with_generator(fresh_kb, answering) as kb:
        answer = kb.ask(kb.system_user(), SERVICE_ZH, ["fresh"])
    assert answer.quote is None or "4,000" not in answer.quote.text
