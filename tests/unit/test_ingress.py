"""The gateway's stream loop helper: deltas already waiting are sent as one event."""

from __future__ import annotations

import asyncio

from emer_proto import emotion_pb2 as pb

from services.gateway.ingress import _merge_waiting_deltas


def _delta(text: str) -> pb.AnalyzeEvent:
    return pb.AnalyzeEvent(request_id="r", explanation_delta=pb.ExplanationDelta(text=text))


def test_waiting_deltas_merge_in_order_and_stop_at_the_next_event() -> None:
    queue: asyncio.Queue[pb.AnalyzeEvent | BaseException | None] = asyncio.Queue()
    labels = pb.AnalyzeEvent(request_id="r", labels=pb.LabelsEvent(basic_category="happy"))
    for item in (_delta(" is"), _delta(" happy"), labels, _delta(" never merged"), None):
        queue.put_nowait(item)
    taken: list[pb.AnalyzeEvent | BaseException | None] = []
    merged = _merge_waiting_deltas(_delta("She"), queue, taken)
    assert merged.explanation_delta.text == "She is happy"
    assert merged.request_id == "r"
    assert taken == [labels]  # sent next, nothing lost
    assert queue.qsize() == 2


def test_a_lone_delta_is_sent_as_it_is() -> None:
    queue: asyncio.Queue[pb.AnalyzeEvent | BaseException | None] = asyncio.Queue()
    first = _delta("Therefore,")
    taken: list[pb.AnalyzeEvent | BaseException | None] = []
    assert _merge_waiting_deltas(first, queue, taken) is first
    assert taken == []


def test_end_of_stream_behind_deltas_is_kept() -> None:
    queue: asyncio.Queue[pb.AnalyzeEvent | BaseException | None] = asyncio.Queue()
    error = RuntimeError("boom")
    queue.put_nowait(_delta("b"))
    queue.put_nowait(error)
    taken: list[pb.AnalyzeEvent | BaseException | None] = []
    assert _merge_waiting_deltas(_delta("a"), queue, taken).explanation_delta.text == "ab"
    assert taken == [error]
