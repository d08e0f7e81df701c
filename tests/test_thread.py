"""A thread's parts: where each job's turn of a shared session file begins, and which events
belong to it."""

from __future__ import annotations

from codexdash.events import parse_lines
from codexdash.store import JobStatus
from codexdash.tail import open_session
from codexdash.thread import Part, event_offsets, line_offsets, part_at, thread_parts
from tests.pane_support import THREAD, record_job, record_thread, second_turn_offset


def test_a_lone_job_has_no_parts_to_mark(sandbox):
    job = record_job(sandbox.engine.store, "a1a1a1a1a1", THREAD)
    assert thread_parts(job.session_file, [job]) == []
    assert thread_parts(None, [job]) == []


def test_a_job_and_its_follow_ups_in_file_order(sandbox):
    parent, follow = record_thread(sandbox.engine.store)
    other = record_job(sandbox.engine.store, "b1b1b1b1b1", "/elsewhere.jsonl")
    parts = thread_parts(str(THREAD), [follow, other, parent])
    assert parts == [Part(0, parent.id, "say hi", JobStatus.COMPLETED),
                     Part(second_turn_offset(), follow.id, "say hi again", JobStatus.COMPLETED)]
    assert parts[1].label() == f"job {follow.id} · say hi again · ✔ completed"
    # The first job not listed (older than what is shown): named by its follow-up.
    assert thread_parts(str(THREAD), [follow])[0] == Part(0, parent.id)
    assert part_at(parts, 0) == 0 and part_at(parts, second_turn_offset() - 1) == 0
    assert part_at(parts, second_turn_offset()) == 1 and part_at(parts, None) is None and part_at([], 5) is None


def test_events_read_from_the_end_know_their_lines():
    opened = open_session(THREAD, last=6)
    start = opened.tail.offset - sum(len(x) + 1 for x in opened.lines)
    offsets = event_offsets(opened.lines, start, len(opened.events))
    assert len(offsets) == len(opened.events) == 6
    turn = second_turn_offset()
    model = next(i for i, e in enumerate(opened.events) if e.text == "say hi again") - 1  # its turn_context
    assert opened.events[model].kind == "model"
    assert all(o < turn for o in offsets[:model]) and all(o >= turn for o in offsets[model:])
    lines = THREAD.read_bytes().splitlines()
    assert line_offsets(lines, 0)[-1] == len(THREAD.read_bytes()) - len(lines[-1]) - 1
    assert len(event_offsets(lines, 0, len(parse_lines(lines)))) == len(parse_lines(lines))
