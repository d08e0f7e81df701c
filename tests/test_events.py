"""The session-file reader over real Codex files and every generation we know."""

from __future__ import annotations

import json

import pytest

from codexdash.events import CommandStatus, Event, Kind, Outcome, SessionParser, SessionSummary, parse_lines
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


def lines_of(name: str) -> list[bytes]:
    return (SAMPLES / name).read_bytes().splitlines()


def summary_from(lines) -> SessionSummary:
    summary = SessionSummary()
    for e in parse_lines(lines):
        summary.add(e)
    return summary


@pytest.mark.parametrize("name", ["0171-tool-handed-back-then-completed.jsonl", "0171-interrupted-during-tool.jsonl",
                                  "completed-tool-call.jsonl", "terminated-sigterm.jsonl"])
def test_tokens_are_known_while_the_first_tool_command_runs(name):
    # Codex writes token_usage_record right after each model response, and token_count only
    # once a tool call returns: while the first command runs, only the former is there.
    lines = lines_of(name)
    first = next(i for i, line in enumerate(lines) if b'"type":"token_usage_record"' in line.replace(b" ", b""))
    assert b"token_count" not in b"".join(lines[: first + 1])
    summary = summary_from(lines[: first + 1])
    assert summary.tokens == 15
    assert summary.token_usage == {"input_tokens": 10, "cached_input_tokens": 0, "output_tokens": 5,
                                   "reasoning_output_tokens": 0, "total_tokens": 15}


@pytest.mark.parametrize("name", ["0169-completed-then-resumed.jsonl", "0171-completed-then-resumed.jsonl",
                                  "0171-tool-handed-back-then-completed.jsonl"])
def test_token_detail_and_running_total_of_a_whole_session(name):
    events, summary = summary_of(name)
    assert summary.tokens == 30
    assert summary.token_usage == {"input_tokens": 20, "cached_input_tokens": 0, "output_tokens": 10,
                                   "reasoning_output_tokens": 0, "total_tokens": 30}
    records = [e for e in events if e.kind == Kind.TOKENS and e.data.get("response_id")]
    assert len(records) == 2 and all(e.data["usage"]["total_tokens"] == 15 for e in records)
    # Reading only the end of the file (as a follower does) still gives the thread's total.
    last_record = max(i for i, line in enumerate(lines_of(name)) if b"token_usage_record" in line)
    assert summary_from(lines_of(name)[last_record:last_record + 1]).tokens == 30


def usage_record(response_id, total, **extra):
    usage = {"input_tokens": total - 5, "cached_input_tokens": 1, "output_tokens": 5, "reasoning_output_tokens": 2, "total_tokens": total}
    return json.dumps({"timestamp": "2026-11-28T10:00:00Z", "type": "token_usage_record",
                       "payload": {"turn_id": "t1", "response_id": response_id, "usage": usage, **extra}})


def test_token_usage_records_without_a_thread_total_are_summed_once_per_response():
    token_count = json.dumps({"type": "event_msg", "payload": {"type": "token_count", "info": {"total_token_usage": {"total_tokens": 100}}}})
    events = parse_lines([usage_record("r1", 40), usage_record("r2", 60), usage_record("r2", 60), token_count, usage_record("r3", 10)])
    assert [e.tokens for e in events] == [40, 100, 100, 110]
    summary = SessionSummary()
    for e in events:
        summary.add(e)
    assert summary.tokens == 110
    assert summary.token_usage == {"total_tokens": 110}  # what token_count said, plus r3
    assert events[1].data["total_usage"] == {"input_tokens": 90, "cached_input_tokens": 2, "output_tokens": 10,
                                             "reasoning_output_tokens": 4, "total_tokens": 100}


@pytest.mark.parametrize("line", [
    json.dumps({"type": "token_usage_record", "payload": {"usage": None}}),
    json.dumps({"type": "token_usage_record", "payload": {"usage": {"total_tokens": "7"}}}),
    json.dumps({"type": "token_usage_record", "payload": {"usage": {"total_tokens": 7}, "thread_token_usage": []}}),
    json.dumps({"type": "token_usage_record", "payload": {"usage": [1], "response_id": {"a": 1}}}),
])
def test_odd_token_usage_records_never_raise(line):
    events = SessionParser().feed(line)
    assert all(e.kind in (Kind.TOKENS, Kind.NOTICE) for e in events)


def results_of(name: str) -> list[Event]:
    events, _ = summary_of(name)
    return [e for e in events if e.kind == Kind.COMMAND_RESULT]


def test_a_command_handed_back_while_it_runs_is_not_shown_finished():
    (result,) = results_of("0171-tool-handed-back-then-completed.jsonl")
    assert result.status == CommandStatus.RUNNING and result.exit_code is None
    assert result.data["process_session_id"] == "42659"
    text = "\n".join(line.text for line in render_event(result))
    assert "still running" in text and "finished" not in text


@pytest.mark.parametrize("name", ["0171-interrupted-during-tool.jsonl", "interrupted-sigint.jsonl"])
def test_a_command_aborted_by_the_user_is_not_shown_finished(name):
    (result,) = results_of(name)
    assert result.status == CommandStatus.ABORTED and result.exit_code is None
    lines = render_event(result)
    assert "aborted" in lines[0].text and lines[0].style == "error" and "finished" not in lines[0].text


def test_finished_commands_say_so_with_their_exit_code():
    (result,) = results_of("completed-tool-call.jsonl")
    assert result.status == CommandStatus.FINISHED and result.exit_code == 0
    assert render_event(result)[0].text == "  ↳ exit 0"


def test_the_final_result_of_a_handed_back_command_is_shown_when_it_comes():
    # Seen with 0.169: the command handed back still running is stopped when the turn ends, and
    # item_completed then says so (status failed, exit code -1), after task_complete.
    call = {"type": "response_item", "payload": {"type": "function_call", "name": "exec_command", "call_id": "c1",
                                                 "arguments": json.dumps({"cmd": "sleep 3", "yield_time_ms": 300})}}
    handed_back = {"type": "response_item", "payload": {"type": "function_call_output", "call_id": "c1",
                   "output": "Chunk ID: 1\nWall time: 0.3 seconds\nProcess running with session ID 7\nOriginal token count: 1\nOutput:\nx\n"}}
    ended = {"type": "event_msg", "payload": {"type": "item_completed", "item": {
        "type": "CommandExecution", "id": "c1", "status": "failed", "exit_code": -1, "aggregated_output": "x\n"}}}
    events = parse_lines(json.dumps(x) for x in (call, handed_back, ended, ended))
    assert [(e.kind, e.status) for e in events] == [(Kind.COMMAND, None), (Kind.COMMAND_RESULT, CommandStatus.RUNNING),
                                                   (Kind.COMMAND_RESULT, CommandStatus.ABORTED)]
    assert events[2].exit_code is None


def test_an_output_that_quotes_the_markers_is_read_by_its_header_only():
    output = "Chunk ID: 1\nWall time: 1 seconds\nProcess exited with code 3\nOutput:\nProcess running with session ID 9\naborted by user\n"
    (result,) = SessionParser().feed(json.dumps({"type": "response_item", "payload": {"type": "function_call_output", "call_id": "c", "output": output}}))
    assert result.status == CommandStatus.FINISHED and result.exit_code == 3


def test_event_stays_backward_compatible():
    event = Event(Kind.COMMAND_RESULT, "out", None, 0)
    assert event.status is None and event.data == {} and event.tokens is None
