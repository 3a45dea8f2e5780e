"""Admission control in the gateway (services/gateway/admission.py): beyond its limit a request
is shed at once with a jittered pushback, and the limit adapts to the answers' latency."""

from __future__ import annotations

import pytest

from services.common.errors import OverloadedError
from services.gateway.admission import Admission


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _answer(admission: Admission, clock: Clock, took_s: float, measured: bool = True) -> None:
    with admission.slot("Analyze") as ticket:
        clock.now += took_s
        ticket.measured = measured


def test_beyond_the_limit_a_request_is_shed_with_a_jittered_pushback() -> None:
    draws = iter([0.0, 1.0])
    admission = Admission(2, retry_after_s=2.0, rng=lambda: next(draws))
    with admission.slot("Analyze"), admission.slot("Analyze"):
        with (
            pytest.raises(OverloadedError, match="at capacity") as first,
            admission.slot("Analyze"),
        ):
            pass
        with pytest.raises(OverloadedError) as second, admission.slot("AnalyzeStream"):
            pass
    assert (first.value.retry_after_s, second.value.retry_after_s) == (1.0, 3.0)
    assert admission.in_progress == 0
    with admission.slot("Analyze"):  # slots are given back, errors or not
        pass


def test_a_slot_is_given_back_when_the_analysis_fails() -> None:
    admission = Admission(1, retry_after_s=1.0)
    with pytest.raises(ValueError), admission.slot("Analyze"):
        raise ValueError("bad media")
    assert admission.in_progress == 0 and admission.limit == 1


def test_slow_answers_cut_the_limit_once_per_interval_and_fast_full_ones_raise_it() -> None:
    clock = Clock()
    admission = Admission(10, retry_after_s=1.0, target_latency_s=20.0, clock=clock)
    assert admission.limit == 10
    _answer(admission, clock, 30.0)  # slower than the target: 10 -> 8
    assert admission.limit == 8
    _answer(admission, clock, 30.0)  # 30 s later, another: 8 -> 6.4
    assert admission.limit == 6
    # A burst of slow answers ending together is one cut, not one per answer.
    slots = [admission.slot("Analyze") for _ in range(5)]
    tickets = [slot.__enter__() for slot in slots]
    clock.now += 25.0
    for slot, ticket in zip(slots, tickets, strict=True):
        ticket.measured = True
        slot.__exit__(None, None, None)
    assert admission.limit == 5
    # Fast answers while the replica is not full leave it; at a full replica they raise it.
    _answer(admission, clock, 1.0)
    assert admission.limit == 5
    for _ in range(30):
        slots = [admission.slot("Analyze") for _ in range(admission.limit)]
        tickets = [slot.__enter__() for slot in slots]
        clock.now += 1.0
        for slot, ticket in zip(slots, tickets, strict=True):
            ticket.measured = True
            slot.__exit__(None, None, None)
    assert admission.limit == 10  # back to the configured most, never above


def test_unmeasured_analyses_and_a_fixed_limit_do_not_move_it() -> None:
    clock = Clock()
    adaptive = Admission(4, retry_after_s=1.0, target_latency_s=5.0, clock=clock)
    _answer(adaptive, clock, 120.0, measured=False)  # a long-media timeline, or an error
    assert adaptive.limit == 4
    fixed = Admission(4, retry_after_s=1.0, clock=clock)
    for _ in range(10):
        _answer(fixed, clock, 120.0)
    assert fixed.limit == 4
    low = Admission(1, retry_after_s=1.0, target_latency_s=5.0, clock=clock)
    for _ in range(5):
        _answer(low, clock, 60.0)
    assert low.limit == 1  # never below one
