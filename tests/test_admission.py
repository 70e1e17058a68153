"""Admission of questions (app.admission) with real threads: bounded, fair, and a question
whose asker has gone leaves the line at once."""

from __future__ import annotations

import threading
import time
from contextlib import closing

import pytest

from app.admission import Admission, Busy, WaitedTooLong


def test_one_asker_cannot_take_every_place():
    admission = Admission(max_admitted=4, per_asker=2, max_wait_s=5)
    with admission.admit("script"), admission.admit("script"):
        with pytest.raises(Busy) as refused:
            with admission.admit("script"):
                pass
        assert refused.value.per_asker and refused.value.retry_after_s >= 1
        with admission.admit("colleague"):  # others still get in
            assert admission.state().admitted == 3
    assert admission.state().admitted == 0


def test_a_full_server_says_when_to_come_back():
    admission = Admission(max_admitted=2, per_asker=2, max_wait_s=5)
    with admission.admit("a"), admission.admit("b"):
        with pytest.raises(Busy) as refused:
            with admission.admit("c"):
                pass
    assert not refused.value.per_asker and refused.value.retry_after_s >= 1


def _take_turn(admission: Admission, name: str, order: list[str], positions: dict[str, list[int]], hold_s: float) -> None:
    for ahead in admission.turn(poll_s=0.05):
        positions.setdefault(name, []).append(ahead)
    order.append(name)
    time.sleep(hold_s)
    admission.done()


def test_turns_at_the_generator_go_first_come_first_served_and_say_how_many_are_ahead():
    admission = Admission(max_admitted=8, per_asker=8, max_wait_s=10)
    order: list[str] = []
    positions: dict[str, list[int]] = {}
    threads = []
    for name in ("first", "second", "third"):
        thread = threading.Thread(target=_take_turn, args=(admission, name, order, positions, 0.3))
        thread.start()
        threads.append(thread)
        time.sleep(0.05)  # arrive in this order
    for thread in threads:
        thread.join(10)
    assert order == ["first", "second", "third"]
    assert "first" not in positions  # the generator was free: no waiting at all
    assert positions["third"][0] == 2 and positions["third"][-1] == 1
    assert admission.state().waiting == 0 and admission.state().writing == 0


def test_a_question_closed_while_waiting_leaves_the_line_at_once():
    admission = Admission(max_admitted=8, per_asker=8, max_wait_s=10)
    holder = admission.turn()
    for _ in holder:  # the generator is free: the first caller gets it without waiting
        pass
    gone = admission.turn(poll_s=0.05)
    assert next(gone) == 1
    assert admission.state().waiting == 1
    gone.close()  # the client disconnected while waiting
    assert admission.state().waiting == 0
    admission.done()


def test_no_question_waits_longer_than_its_allowance():
    admission = Admission(max_admitted=8, per_asker=8, max_wait_s=0.3)
    for _ in admission.turn():
        pass
    started = time.monotonic()
    with pytest.raises(WaitedTooLong):
        with closing(admission.turn(poll_s=0.05)) as waiting:
            for _ in waiting:
                pass
    assert time.monotonic() - started < 2
    assert admission.state().waiting == 0
