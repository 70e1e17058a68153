"""The admin console's Evaluation tab: a collection's own evaluation set (app.collection_eval).

Questions with the file and page that answer them are added, listed and removed here, the
set is run against the live index on demand, and the scores of every run (on demand, and
each re-index's live and new index with what it did) are shown newest first. Like the rest
of the console it only shows what `app.service.KnowledgeBase` allows, or why not.
"""

from __future__ import annotations

import gradio as gr

from app.schemas import EvalRunInfo, GuardReport, NewEvalQuestion
from app.service import KnowledgeBase
from ui.admin_common import _frame, _when, collection_tab
from ui.i18n import I18N, Refusal, t, value

QUESTION_COLUMNS = ["id", "question", "file", "page", "added by", "added"]
RUN_COLUMNS = ["when", "index", "recall@5", "MRR@10", "questions", "job", "verdict"]


def _score(score: float) -> str:
    return f"{score:.3f}"


def last_scores(runs: list[EvalRunInfo], lang: str) -> str:
    """The newest run in a sentence: a run on demand, or a re-index's two scores and verdict."""
    if not runs:
        return t("eval_no_runs", lang)
    last = runs[0]
    if last.job_id is None or last.verdict is None:
        return t(
            "eval_last_run",
            lang,
            when=_when(last.created_at),
            recall=_score(last.recall_at_5),
            mrr=_score(last.mrr_at_10),
            questions=last.questions,
        )
    # A re-index records its live score just before its candidate's (none if the live index could not be searched).
    live = runs[1] if len(runs) > 1 and runs[1].job_id == last.job_id and runs[1].index == "live" else None
    return t(
        "eval_last_reindex",
        lang,
        job=last.job_id,
        when=_when(last.created_at),
        live=_score(live.recall_at_5) if live else "–",
        candidate=_score(last.recall_at_5),
        questions=last.questions,
        verdict=t(f"eval_verdict_{last.verdict}", lang),
    )


def guard_summary(report: GuardReport, lang: str) -> str:
    """One re-index's guard in a sentence, for the dashboard's re-index message."""
    return t(
        "admin_reindex_guard",
        lang,
        collection=report.collection,
        live=_score(report.live.recall_at_5) if report.live else "–",
        candidate=_score(report.candidate.recall_at_5),
        verdict=t(f"eval_verdict_{report.verdict}", lang),
    )


def evaluation_tab(kb: KnowledgeBase, actor, collection: gr.Dropdown, refresh: gr.Button, lang_switch: gr.Radio) -> gr.Tab:
    """The tab, built inside the console's gr.Tabs; `actor(request)` is the console's user.
    It follows the console's collection choice, its refresh button and its language switch."""
    with gr.Tab(I18N("admin_tab_evaluation"), id="evaluation") as tab:
        gr.Markdown(I18N("eval_intro"))
        message = gr.Markdown(elem_id="eval-message")
        last = gr.Markdown(elem_id="eval-last")
        questions = gr.Dataframe(
            headers=QUESTION_COLUMNS, interactive=False, wrap=True, label=I18N("eval_questions_label"), elem_id="eval-questions"
        )
        with gr.Row():
            question = gr.Textbox(label=I18N("eval_question"), scale=4, elem_id="eval-question")
            file = gr.Dropdown(label=I18N("eval_file"), choices=[], scale=2, elem_id="eval-file")
            page = gr.Number(label=I18N("eval_page"), value=None, precision=0, scale=1, elem_id="eval-page")
            add_button = gr.Button(I18N("eval_add"), variant="primary", scale=1, elem_id="eval-add")
        with gr.Row():
            to_remove = gr.Dropdown(label=I18N("eval_to_remove"), choices=[], scale=4, elem_id="eval-remove-choice")
            remove_button = gr.Button(I18N("eval_remove"), scale=1, elem_id="eval-remove")
        run_button = gr.Button(I18N("eval_run"), elem_id="eval-run")
        history = gr.Dataframe(headers=RUN_COLUMNS, interactive=False, label=I18N("eval_history"), elem_id="eval-history")
    outputs = [message, last, questions, file, to_remove, history]

    def render(user, selected: str | None, lang: str, said: str) -> tuple:
        if not selected:
            nothing = gr.update(choices=[], value=None)
            return said, "", _frame(QUESTION_COLUMNS, [], lang), nothing, nothing, _frame(RUN_COLUMNS, [], lang)
        listed = kb.eval_questions(user, selected)
        runs = kb.eval_runs(user, selected)
        files = sorted({d.filename for d in kb.documents(user, selected) if d.status.value == "ready"})
        question_rows = [[q.id, q.question, q.file, q.page or "", q.created_by, _when(q.created_at)] for q in listed]
        run_rows = [
            [
                _when(r.created_at),
                value(r.index, lang, "index"),
                _score(r.recall_at_5),
                _score(r.mrr_at_10),
                r.questions,
                r.job_id or "",
                value(r.verdict, lang, "verdict") if r.verdict else "",
            ]
            for r in runs
        ]
        question_choices = [(f"{q.id} · {q.question[:80]}", q.id) for q in listed]
        return (
            said,
            last_scores(runs, lang),
            _frame(QUESTION_COLUMNS, question_rows, lang),
            gr.update(choices=files, value=None),
            gr.update(choices=question_choices, value=None),
            _frame(RUN_COLUMNS, run_rows, lang),
        )

    respond = collection_tab(tab, actor, render, collection, refresh, lang_switch, outputs)

    def add(selected: str | None, text: str | None, filename: str | None, page_number: float | None, request: gr.Request):
        def action(user, lang: str) -> str:
            assert selected is not None  # respond runs an action only once a collection is chosen
            if text is None or not text.strip():
                raise Refusal("eval_enter_question")
            if not filename:
                raise Refusal("eval_choose_file")
            if page_number is not None and (page_number < 1 or page_number != int(page_number)):
                raise Refusal("eval_bad_page")
            number = int(page_number) if page_number is not None else None
            item = NewEvalQuestion(question=text.strip(), file=filename, page=number)
            (added,) = kb.add_eval_questions(user, selected, [item])
            return t("eval_added", lang, id=added.id, collection=selected)

        return respond(request, selected, action=action)

    def remove(selected: str | None, question_id, request: gr.Request):
        def action(user, lang: str) -> str:
            assert selected is not None  # respond runs an action only once a collection is chosen
            if question_id is None:
                raise Refusal("eval_choose_question")
            kb.remove_eval_question(user, selected, int(question_id))
            return t("eval_removed", lang, id=question_id, collection=selected)

        return respond(request, selected, action=action)

    def run(selected: str | None, request: gr.Request):
        def action(user, lang: str) -> str:
            assert selected is not None  # respond runs an action only once a collection is chosen
            done, scores = kb.run_eval(user, selected)
            said = t(
                "eval_ran",
                lang,
                collection=selected,
                recall=_score(done.recall_at_5),
                mrr=_score(done.mrr_at_10),
                questions=done.questions,
            )
            return said + (t("eval_missed", lang, questions="; ".join(scores.missed)) if scores.missed else "")

        return respond(request, selected, action=action)

    add_button.click(add, [collection, question, file, page], outputs)
    remove_button.click(remove, [collection, to_remove], outputs)
    run_button.click(run, [collection], outputs)
    return tab
