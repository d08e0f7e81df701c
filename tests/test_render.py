"""Texts written for people: outcomes said once, raw records pretty-printed and inert, durations
and times as people read them."""

from __future__ import annotations

import json
import time

import pytest

from codexdash.events import Event, Kind, Outcome
from codexdash.format import duration, local_time
from codexdash.identity import _other_start
from codexdash.render import render_event, render_record
from tests.conftest import SAMPLES


@pytest.mark.parametrize("outcome,text,shown", [
    (Outcome.INTERRUPTED, "interrupted", "■ interrupted"),
    (Outcome.INTERRUPTED, "", "■ interrupted"),
    (Outcome.INTERRUPTED, "replaced", "■ interrupted: replaced"),
    (Outcome.FAILED, "failed", "✖ failed"),
    (Outcome.FAILED, "Connection failed", "✖ failed: Connection failed"),
    (Outcome.COMPLETED, "", "✔ completed"),
    (Outcome.COMPLETED, "done", "✔ completed: done"),
])
def test_an_outcome_is_said_once(outcome, text, shown):
    assert [line.text for line in render_event(Event(Kind.OUTCOME, text, outcome=outcome))] == [shown]


def test_a_record_is_pretty_printed_under_a_heading_with_its_types():
    line = (SAMPLES / "0171-completed-then-resumed.jsonl").read_bytes().splitlines()[13]
    lines = render_record(line)
    assert lines[0].text == "▸ event_msg · task_complete  2026-11-28T14:58:19.014Z  #13"
    body = "\n".join(x.text for x in lines[1:])
    assert json.loads(body)["last_agent_message"] == "hi from mock"  # the payload, whole
    assert '\n  "last_agent_message": "hi from mock",\n' in body


@pytest.mark.parametrize("line,heading", [
    (b'{"type": "message", "role": "user"}', "▸ message"),  # early releases: bare items
    (b"[1, 2]", "▸ list"),
    (b"{not json", "▸ not JSON (9 characters)"),
])
def test_any_line_has_a_heading(line, heading):
    assert render_record(line)[0].text == heading


def test_raw_records_keep_control_characters_inert():
    line = json.dumps({"type": "x\u202e", "payload": {"text": "a\x1b[2Jb\x9bc\u2066"}}).encode()
    text = "\n".join(x.text for x in render_record(line))
    assert "\\u001b[2J" in text and "<U+009B>" in text and "<U+2066>" in text and "x<U+202E>" in text
    assert not any(ch in text for ch in "\x1b\x9b\u202e\u2066")
    broken = "\n".join(x.text for x in render_record(b"\x1b[31m{"))
    assert "^[[31m{" in broken and "\x1b" not in broken


@pytest.mark.parametrize("seconds,shown", [
    (None, "-"), (0, "0s"), (59, "59s"), (60, "1m 00s"), (100, "1m 40s"), (119, "1m 59s"),
    (599, "9m 59s"), (600, "10m"), (3599, "59m"), (3600, "1h00m"), (200_000, "2d07h"),
])
def test_durations_for_people(seconds, shown):
    assert duration(seconds) == shown


def test_start_times_are_local_date_times():
    ts = time.mktime((2026, 11, 28, 15, 4, 5, 0, 0, -1)) + 0.78
    assert local_time(ts) == "2026-11-28 15:04:05"
    assert _other_start(ts, ts - 3600).startswith("started at 2026-11-28 15:04:05, not at 2026-11-28 14:04:05")
    # Within one second (a reused PID starts within milliseconds of the recorded start): milliseconds.
    assert "15:04:05.780, not at 2026-11-28 15:04:05.790" in _other_start(ts, ts + 0.01)


def rows(plain: str, width: int) -> list[str]:
    from codexdash.ui.line_wrap import hanging_indent, wrap_offsets

    indent = hanging_indent(plain, width)
    cuts = [0, *wrap_offsets(plain, width, indent), len(plain)]
    return [(" " * indent if i else "") + plain[cuts[i]:cuts[i + 1]] for i in range(len(cuts) - 1)]


@pytest.mark.parametrize("plain,width,expected", [
    ("short", 20, ["short"]),
    ("• one two three four", 10, ["• one two ", "  three ", "  four"]),  # under the text, not the bullet
    ("$ ls a/very/long/path/name", 12, ["$ ls a/very/", "  long/path/", "  name"]),  # folded where the row is
    ("    xx xx xx xx", 12, ["    xx xx xx ", "    xx"]),
    ("    xx xx xx xx", 8, ["    xx ", "xx xx xx"]),  # no room for the indent: flush
    ("漢字漢字漢字", 5, ["漢字", "漢字", "漢字"]),  # two cells each
    ("漢", 1, ["漢"]),  # wider than the row: alone on it, never lost
    ("plain words wrap flush", 12, ["plain words ", "wrap flush"]),
])
def test_long_lines_break_into_rows_that_fit(plain, width, expected):
    assert rows(plain, width) == expected
