"""A collection's own evaluation set (app.collection_eval): its questions, runs and scores.

Its readers see a collection's questions and scores; its editors and admins change the set
and run it. To anyone else the collection does not exist.
"""

from __future__ import annotations

from collections.abc import Callable

from app.answering import Answerer
from app.collection_eval import LIVE, EvalSets, evaluate
from app.kb.access import Access
from app.kb.errors import NotFound
from app.models import Collection, User
from app.schemas import EvalQuestionInfo, EvalRunInfo, EvalScores, NewEvalQuestion


class EvaluationSets:
    def __init__(self, access: Access, eval_sets: EvalSets, answerer: Callable[[], Answerer]) -> None:
        self.access = access
        self.eval_sets = eval_sets
        self.answerer = answerer

    def collection(self, user: User, collection_name: str, change: bool = False) -> Collection:
        (collection,) = self.access.readable_collections(user, [collection_name])
        if change:
            self.access.writable(user, collection)
        return collection

    def questions(self, user: User, collection_name: str) -> list[EvalQuestionInfo]:
        return self.eval_sets.questions(self.collection(user, collection_name).id)

    def add_questions(
        self, user: User, collection_name: str, questions: list[NewEvalQuestion], skip_existing: bool = False
    ) -> list[EvalQuestionInfo]:
        collection = self.collection(user, collection_name, change=True)
        return self.eval_sets.add(collection, questions, user.username, skip_existing)

    def remove_question(self, user: User, collection_name: str, question_id: int) -> None:
        collection = self.collection(user, collection_name, change=True)
        if not self.eval_sets.remove(collection.id, question_id):
            raise NotFound(f"no evaluation question {question_id} in collection {collection_name!r}")

    def run(self, user: User, collection_name: str) -> tuple[EvalRunInfo, EvalScores]:
        collection = self.collection(user, collection_name, change=True)
        questions = self.eval_sets.questions(collection.id)
        if not questions:
            raise ValueError(f"collection {collection_name} has no evaluation questions yet; add some first")
        scores = evaluate(self.answerer(), collection, questions)
        return self.eval_sets.record(collection, LIVE, scores), scores

    def runs(self, user: User, collection_name: str, limit: int = 50) -> list[EvalRunInfo]:
        return self.eval_sets.runs(self.collection(user, collection_name), limit)
