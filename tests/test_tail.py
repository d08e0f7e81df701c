"""Reading a growing file: incremental, from the end, across truncation and replacement."""

from __future__ import annotations

import json
import os

from hypothesis import given, settings, strategies as st

from codexdash.events import parse_lines
from codexdash.tail import SessionTail, open_session
from tests.conftest import SAMPLES


def append(path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


def test_partial_line_is_kept_until_complete(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_bytes(b'{"a": 1}\n{"b"')
    tail = SessionTail(path)
    assert tail.read().lines == [b'{"a": 1}']
    assert tail.read().lines == []
    append(path, b': 2}\n')
    assert tail.read().lines == [b'{"b": 2}']


def test_truncation_and_replacement_restart(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"one\ntwo\n")
    tail = SessionTail(path)
    assert tail.read().lines == [b"one", b"two"]
    path.write_bytes(b"x\n")  # truncated
    chunk = tail.read()
    assert chunk.reset and chunk.lines == [b"x"]
    replacement = tmp_path / "new"
    replacement.write_bytes(b"fresh\nfile\nthat is longer\n")
    os.replace(replacement, path)
    chunk = tail.read()
    assert chunk.reset and chunk.lines == [b"fresh", b"file", b"that is longer"]
    path.unlink()
    assert tail.read().problem and "no longer exists" in tail.read().problem


@given(data=st.binary(max_size=3000), cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=12))
@settings(max_examples=150, deadline=None)
def test_any_split_of_any_bytes_gives_the_lines_of_the_whole(tmp_path_factory, data, cuts):
    path = tmp_path_factory.mktemp("t") / "s.jsonl"
    path.write_bytes(b"")
    tail = SessionTail(path)
    got = []
    previous = 0
    for cut in sorted(c for c in cuts if c <= len(data)) + [len(data)]:
        append(path, data[previous:cut])
        previous = cut
        got.extend(tail.read().lines)
    whole = data.split(b"\n")[:-1]  # the unterminated end is not a line yet
    assert got == whole
    assert parse_lines(got) == parse_lines(whole)


def test_open_from_the_end_matches_reading_forward(tmp_path):
    lines = (SAMPLES / "completed-tool-call.jsonl").read_bytes().splitlines()
    whole = parse_lines(lines)
    for last in (1, 3, 5, len(whole), 1000):
        opened = open_session(SAMPLES / "completed-tool-call.jsonl", last=last)
        assert opened.events == whole[-last:]
        assert opened.truncated == (last < len(whole))


def test_open_then_follow_sees_only_new_events(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_bytes((SAMPLES / "completed-message.jsonl").read_bytes() + b'{"type": "event_msg", "payl')
    opened = open_session(path, last=2)
    assert len(opened.events) == 2
    append(path, b'oad": {"type": "error", "message": "late"}}\n')
    new = [e for line in opened.tail.read().lines for e in opened.parser.feed(line)]
    assert [e.text for e in new] == ["late"]


def test_very_long_line_and_invalid_utf8_do_not_break_reading(tmp_path):
    path = tmp_path / "s.jsonl"
    big = json.dumps({"type": "response_item", "payload": {"type": "function_call_output", "call_id": "c", "output": "x" * (5 << 20)}})
    path.write_bytes(b"\xff\xfe garbage\n" + big.encode() + b"\n" + (SAMPLES / "completed-message.jsonl").read_bytes())
    opened = open_session(path, last=1000)
    kinds = [e.kind for e in opened.events]
    assert kinds[0] == "notice" and "command_result" in kinds and kinds[-1] == "outcome"


def test_an_over_long_line_is_skipped_with_a_notice_and_reading_goes_on(tmp_path, monkeypatch):
    import codexdash.tail as tail_module
    from codexdash.tail import session_from

    monkeypatch.setattr(tail_module, "MAX_LINE_BYTES", 1000)
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"")
    session = session_from(path)
    append(path, b'{"type": "x", "pad": "' + b"y" * 1500)  # held back past the limit: dropped
    (notice,) = session.read_more().events
    assert notice.kind == "notice" and "skipped" in notice.text
    append(path, b"y" * 600 + b'"}\n' + (SAMPLES / "completed-message.jsonl").read_bytes().splitlines(keepends=True)[-1])
    assert [e.kind for e in session.read_more().events] == ["outcome"]  # the rest of it is dropped too
