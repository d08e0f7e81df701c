"""The session-file reader over real Codex files and every generation we know."""

from __future__ import annotations

import json

import pytest

from codexdash.events import Kind, Outcome, SessionParser, SessionSummary, parse_lines
from codexdash.render import render_event, render_events, sanitize
from tests.conftest import SAMPLES


def summary_of(name: str) -> tuple[list, SessionSummary]:
    events = parse_lines((SAMPLES / name).read_bytes().splitlines())
    summary = SessionSummary()
    for e in events:
        summary.add(e)
    return events, summary


@pytest.mark.parametrize(
    ("name", "outcome", "prompt"),
    [
        ("completed-message.jsonl", Outcome.COMPLETED, "say hi"),
        ("completed-tool-call.jsonl", Outcome.COMPLETED, "please SLEEP 2"),
        ("failed-connection.jsonl", Outcome.FAILED, "say hi"),
        ("interrupted-sigint.jsonl", Outcome.INTERRUPTED, "please SLEEP 20"),
        ("terminated-sigterm.jsonl", None, "please SLEEP 20"),
    ],
)
def test_real_samples_give_outcome_and_prompt(name, outcome, prompt):
    events, summary = summary_of(name)
    assert summary.outcome == outcome
    assert summary.prompt == prompt  # the environment context is not taken for the prompt
    assert summary.session_id and summary.session_id in name or summary.session_id.count("-") == 4
    assert summary.cli_version == "0.169.0"
    assert summary.model == "mock-model"
    assert [e.kind for e in events].count(Kind.PROMPT) == 1


def test_tool_call_is_shown_once_with_its_exit_code():
    events, summary = summary_of("completed-tool-call.jsonl")
    commands = [e for e in events if e.kind == Kind.COMMAND]
    results = [e for e in events if e.kind == Kind.COMMAND_RESULT]
    assert [c.text for c in commands] == ["sleep 2"]
    assert len(results) == 1 and results[0].exit_code == 0
    assert summary.tokens == 30
    text = "\n".join(line.text for line in render_events(events))
    assert "$ sleep 2" in text and "exit 0" in text and "• hi from mock" in text and "completed" in text


def test_failed_session_renders_the_error():
    events, _ = summary_of("failed-connection.jsonl")
    lines = render_events(events)
    assert any(line.style == "error" and "Connection failed" in line.text for line in lines)


def test_older_generation_without_ordinal_and_with_exec_command_end():
    lines = [
        {"timestamp": "2025-05-01T10:00:00Z", "type": "session_meta", "payload": {"id": "abc", "cwd": "/w", "cli_version": "0.46.0"}},
        {"timestamp": "2025-05-01T10:00:01Z", "type": "response_item", "payload": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "fix it"}]}},
        {"timestamp": "2025-05-01T10:00:02Z", "type": "response_item", "payload": {"type": "function_call", "name": "shell", "call_id": "c1", "arguments": json.dumps({"command": ["bash", "-lc", "make test"]})}},
        {"timestamp": "2025-05-01T10:00:03Z", "type": "event_msg", "payload": {"type": "exec_command_end", "call_id": "c1", "exit_code": 2, "stdout": "boom\n", "stderr": ""}},
        {"timestamp": "2025-05-01T10:00:03Z", "type": "response_item", "payload": {"type": "function_call_output", "call_id": "c1", "output": json.dumps({"output": "boom", "metadata": {"exit_code": 2}})}},
        {"timestamp": "2025-05-01T10:00:04Z", "type": "event_msg", "payload": {"type": "task_complete", "last_agent_message": "done"}},
    ]
    events = parse_lines(json.dumps(x) for x in lines)
    kinds = [e.kind for e in events]
    assert kinds == [Kind.META, Kind.PROMPT, Kind.COMMAND, Kind.COMMAND_RESULT, Kind.OUTCOME]
    assert events[2].text == "make test"
    assert events[3].exit_code == 2


def test_first_generation_bare_lines():
    lines = [
        json.dumps({"id": "s-1", "timestamp": "2025-04-01T00:00:00Z", "instructions": None}),
        json.dumps({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]}),
        json.dumps({"record_type": "state"}),
        json.dumps({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hi"}]}),
    ]
    events = parse_lines(lines)
    assert [e.kind for e in events] == [Kind.META, Kind.PROMPT, Kind.AGENT]
    assert events[0].data["session_id"] == "s-1"


@pytest.mark.parametrize(
    "line",
    [b"not json", b"\xff\xfe\x00garbage", b"[1,2,3]", b'{"type": "event_msg", "payload": {"type": "task_complete", "error": 5}}',
     b'{"type": "response_item", "payload": {"type": "message", "content": 7}}', b'{"type": "brand_new", "payload": {}}',
     b"[" * 100_000, b'{"type": "event_msg", "payload": {"type": "token_count", "info": {"total_token_usage": []}}}'],
)
def test_bad_lines_never_raise(line):
    events = SessionParser().feed(line)
    assert all(e.kind in (Kind.NOTICE, Kind.OUTCOME) for e in events)


def test_terminal_escapes_and_markup_are_inert():
    hostile = "\x1b[2J\x1b]0;pwned\x07[bold red]x[/] [@click=app.quit]y[/] \u202edrowssap\r\x9b31m"
    line = json.dumps({"type": "response_item", "payload": {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": hostile}]}})
    (event,) = SessionParser().feed(line)
    rendered = "".join(line.text for line in render_event(event))
    assert "\x1b" not in rendered and "\x07" not in rendered and "\r" not in rendered and "\x9b" not in rendered
    assert "\u202e" not in rendered
    assert "^[[2J" in rendered and "[bold red]" in rendered  # shown, as text
    assert sanitize("a\tb") == "a    b"


# Real files from 0.169.0 and 0.171.0: a session resumed once (`codex exec resume ID PROMPT`
# appends the second turn to the same file), and 0.171 tool calls handed back or interrupted.
@pytest.mark.parametrize(
    ("name", "version", "outcome", "prompts", "commands", "tokens"),
    [
        ("0169-completed-then-resumed.jsonl", "0.169.0", Outcome.COMPLETED, ["say hi", "say hi again"], [], 30),
        ("0171-completed-then-resumed.jsonl", "0.171.0", Outcome.COMPLETED, ["say hi", "say hi again"], [], 30),
        ("0171-interrupted-during-tool.jsonl", "0.171.0", Outcome.INTERRUPTED, ["please SLEEP 29 and add type hints"], ["sleep 29"], 15),
        ("0171-tool-handed-back-then-completed.jsonl", "0.171.0", Outcome.COMPLETED,
         ["please SLEEP 45 while you review work3 and write a short report"], ["sleep 45"], 30),
    ],
)
def test_real_samples_of_both_releases(name, version, outcome, prompts, commands, tokens):
    events, summary = summary_of(name)
    assert summary.cli_version == version and summary.model == "mock-model"
    assert summary.session_id and summary.session_id.count("-") == 4
    assert [e.text for e in events if e.kind == Kind.PROMPT] == prompts
    assert summary.prompt == prompts[0]  # the job's prompt is the first one, not a follow-up's
    assert summary.outcome == outcome
    assert summary.tokens == tokens
    assert [e.text for e in events if e.kind == Kind.COMMAND] == commands
    assert len([e for e in events if e.kind == Kind.COMMAND_RESULT]) == len(commands)
    assert not [e for e in events if e.kind == Kind.NOTICE]


def test_a_resumed_session_has_one_meta_and_an_outcome_per_turn():
    events, summary = summary_of("0171-completed-then-resumed.jsonl")
    assert [e.kind for e in events].count(Kind.META) == 1
    assert [e.outcome for e in events if e.kind == Kind.OUTCOME] == [Outcome.COMPLETED, Outcome.COMPLETED]
    assert summary.outcome_text == "hi from mock"
