"""Reading Codex session files (JSON Lines) into events, for every file generation we know.

- 0.169 and 0.171: `{"timestamp", "ordinal", "type", "payload"}` on every line.
- 0.4x-0.6x: the same envelope without `ordinal`.
- The first releases: a bare first line (`id`, `timestamp`, `instructions`) and bare items.

Unknown types and fields are skipped; a line that is not JSON becomes a NOTICE event. Nothing
here raises on bad input.
"""

from __future__ import annotations

import json
import re

from codexdash.plain import Fields, FrozenFields

# Outputs are kept to their end: that is where errors and exit codes are.
MAX_OUTPUT_CHARS = 16_384

# User messages that Codex adds as context, not the user's own prompt.
_CONTEXT_MESSAGE = re.compile(r"^\s*<([a-z_]+_(context|instructions)|turn_aborted|user_shell_command|subagent_notification)\b")
_EXIT_CODE_IN_OUTPUT = re.compile(r"(?:Process exited with code|Exit code:)\s*(-?\d+)")
# A tool command that still runs when Codex hands it back to the model (after `yield_time_ms`),
# and one stopped before it finished (ctrl+c, SIGINT, the turn ending).
_STILL_RUNNING_IN_OUTPUT = re.compile(r"(?m)^Process running with session ID (\S+)")
_ABORTED_IN_OUTPUT = re.compile(r"(?m)^aborted by user\b")
# The per-response usage fields, summed into a running total.
_USAGE_FIELDS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens", "total_tokens")


class Kind:
    META = "meta"  # session id, cwd, Codex version
    MODEL = "model"
    PROMPT = "prompt"
    AGENT = "agent"
    REASONING = "reasoning"
    COMMAND = "command"  # a tool call started
    COMMAND_RESULT = "command_result"  # its exit code and output
    TOKENS = "tokens"
    OUTCOME = "outcome"  # completed / failed / interrupted
    ERROR = "error"
    NOTICE = "notice"  # something codexdash could not read


class Outcome:
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class CommandStatus:
    """How a tool command's result left it (the `status` of a COMMAND_RESULT event)."""

    FINISHED = "finished"  # it exited (its exit code, when Codex wrote one, is in `exit_code`)
    RUNNING = "running"  # handed back to the model while it still runs; a later result may follow
    ABORTED = "aborted"  # stopped before it finished (ctrl+c, SIGINT, the turn ending)


_NEW_DICT = object()  # `data` not given: a dict of the event's own


class Event(FrozenFields):
    """One thing a session said, as read from its lines; not changed once made."""

    __slots__ = ("kind", "text", "timestamp", "exit_code", "tokens", "outcome", "data", "status")
    FIELDS = __slots__
    __match_args__ = __slots__

    # COMMAND_RESULT: `status` is a CommandStatus. TOKENS events carry their detail in `data`:
    # `usage` (this response or the last one) and `total_usage` (the running total), each with
    # the fields of _USAGE_FIELDS that Codex wrote.
    def __init__(self, kind: str, text: str = "", timestamp: str | None = None, exit_code: int | None = None,
                 tokens: int | None = None, outcome: str | None = None, data: dict = _NEW_DICT,  # type: ignore[assignment]
                 status: str | None = None) -> None:
        set_ = object.__setattr__
        set_(self, "kind", kind)
        set_(self, "text", text)
        set_(self, "timestamp", timestamp)
        set_(self, "exit_code", exit_code)
        set_(self, "tokens", tokens)
        set_(self, "outcome", outcome)
        set_(self, "data", {} if data is _NEW_DICT else data)
        set_(self, "status", status)


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = []
    for part in content:
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            parts.append(part["text"])
    return "".join(parts)


def _keep_end(text: str) -> str:
    if len(text) <= MAX_OUTPUT_CHARS:
        return text
    return f"[... {len(text) - MAX_OUTPUT_CHARS} characters before ...]\n" + text[-MAX_OUTPUT_CHARS:]


def _command_text(name: str, arguments: object) -> str:
    args: object = arguments
    if isinstance(arguments, str):
        try:
            args = json.loads(arguments)
        except ValueError:
            return f"{name} {arguments}"
    if isinstance(args, dict):
        cmd = args.get("cmd", args.get("command"))
        if isinstance(cmd, list):
            # Older releases: ["bash", "-lc", "the command"]; show the command itself.
            if len(cmd) == 3 and cmd[1] in ("-lc", "-c"):
                return str(cmd[2])
            return " ".join(str(c) for c in cmd)
        if isinstance(cmd, str):
            return cmd
    return f"{name} {json.dumps(args, ensure_ascii=False)[:500]}"


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _usage(value: object) -> dict[str, int]:
    """The known integer fields of a usage object (empty when it is not one)."""
    if not isinstance(value, dict):
        return {}
    return {k: v for k in _USAGE_FIELDS if (v := _int(value.get(k))) is not None}


# A tool output's header is a few lines: its first characters are all that is searched for it
# (a 2 MB output without one was searched whole, three times, in every look at its session).
HEADER_CHARS = 4096


def _output_status(output: str) -> tuple[str, int | None, dict]:
    """Status, exit code and details read from the header of a tool output (before `Output:`)."""
    header = output[:HEADER_CHARS].split("\nOutput:", 1)[0]
    if m := _STILL_RUNNING_IN_OUTPUT.search(header):
        return CommandStatus.RUNNING, None, {"process_session_id": m.group(1)}
    if m := _EXIT_CODE_IN_OUTPUT.search(header):
        return CommandStatus.FINISHED, int(m.group(1)), {}
    if _ABORTED_IN_OUTPUT.search(header):
        return CommandStatus.ABORTED, None, {}
    return CommandStatus.FINISHED, None, {}


def decode_line(line: bytes | str) -> dict | list[Event] | None:
    """A session line's record; the notice saying why it cannot be read; None for a blank line."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    line = line.strip()
    if not line:
        return None
    try:
        record = json.loads(line)
    except ValueError as exc:
        return [Event(Kind.NOTICE, f"unreadable line ({len(line)} characters): {exc.msg}")]
    except RecursionError:
        return [Event(Kind.NOTICE, f"unreadable line ({len(line)} characters): nested too deeply")]
    if not isinstance(record, dict):
        return [Event(Kind.NOTICE, "unreadable line: not a JSON object")]
    return record


class SessionParser:
    """Turns lines into events. Stateful only to merge what Codex records twice."""

    def __init__(self) -> None:
        # Codex records a tool call's result twice (function_call_output, and item_completed or
        # exec_command_end): the first one seen is shown, the other skipped. A result saying the
        # command still runs does not resolve the call: its final result is shown when it comes.
        self._resolved_calls: set[str] = set()
        # Token usage: `token_usage_record` (one per model response, written right after it) and
        # `event_msg` `token_count` (running totals, written only once a tool call returns or the
        # turn ends). The running total follows both; responses are counted once.
        self._responses: set[tuple] = set()
        self._total_usage: dict[str, int] | None = None

    def feed(self, line: bytes | str) -> list[Event]:
        return self.feed_decoded(decode_line(line))

    def feed_decoded(self, record: dict | list[Event] | None) -> list[Event]:
        """The events of a line decoded by `decode_line` (a line read twice is decoded once)."""
        if record is None:
            return []
        if isinstance(record, list):
            return list(record)
        try:
            return self._record(record)
        except (TypeError, AttributeError, ValueError, KeyError):
            # A known type with fields of unexpected shapes: skip, as with unknown types.
            return [Event(Kind.NOTICE, f"a {record.get('type')!s} record of an unexpected shape was skipped")]

    def _record(self, record: dict) -> list[Event]:
        ts = record.get("timestamp") if isinstance(record.get("timestamp"), str) else None
        rtype = record.get("type")
        payload = record.get("payload")
        if rtype is None and "id" in record and "instructions" in record:
            # The very first releases: a bare session header.
            return [Event(Kind.META, timestamp=ts, data={"session_id": str(record["id"])})]
        if not isinstance(payload, dict):
            if rtype in ("message", "function_call", "function_call_output", "reasoning", "local_shell_call"):
                return self._response_item(record, ts)  # early releases: bare response items
            return []
        if rtype == "session_meta":
            return [
                Event(
                    Kind.META,
                    timestamp=ts,
                    data={
                        "session_id": payload.get("id"),
                        "cwd": payload.get("cwd"),
                        "cli_version": payload.get("cli_version"),
                        "originator": payload.get("originator"),
                        # `codex exec --thread-source VALUE` writes VALUE here: the job it names.
                        "thread_source": payload.get("thread_source"),
                    },
                )
            ]
        if rtype == "turn_context":
            model = payload.get("model")
            return [Event(Kind.MODEL, str(model), timestamp=ts)] if model else []
        if rtype == "response_item":
            return self._response_item(payload, ts)
        if rtype == "event_msg":
            return self._event_msg(payload, ts)
        if rtype == "token_usage_record":
            return self._token_usage_record(payload, ts)
        return []

    def _token_usage_record(self, record: dict, ts: str | None) -> list[Event]:
        usage = _usage(record.get("usage"))
        if "total_tokens" not in usage:
            return []
        key = tuple(str(record.get(k)) for k in ("session_id", "turn_id", "response_id"))
        if record.get("response_id") is not None:
            if key in self._responses:
                return []
            self._responses.add(key)
        thread = _usage(record.get("thread_token_usage"))
        if "total_tokens" in thread:
            # Codex's own running total of the thread: right even when reading began mid-file.
            total_usage = thread
        elif self._total_usage is None:
            total_usage = dict(usage)
        else:  # a field missing on either side is unknown in the sum
            total_usage = {k: v + usage[k] for k, v in self._total_usage.items() if k in usage}
        self._total_usage = total_usage
        data = {"usage": usage, "total_usage": dict(total_usage), "response_id": record.get("response_id")}
        return [Event(Kind.TOKENS, timestamp=ts, tokens=total_usage["total_tokens"], data=data)]

    def _response_item(self, item: dict, ts: str | None) -> list[Event]:
        itype = item.get("type")
        if itype == "message":
            role = item.get("role")
            text = _text_of(item.get("content"))
            if role == "user" and text and not _CONTEXT_MESSAGE.match(text):
                return [Event(Kind.PROMPT, text, timestamp=ts)]
            if role == "assistant" and text:
                return [Event(Kind.AGENT, text, timestamp=ts)]
            return []
        if itype == "function_call":
            name = str(item.get("name", "tool"))
            return [
                Event(Kind.COMMAND, _command_text(name, item.get("arguments")), timestamp=ts, data={"call_id": item.get("call_id"), "tool": name})
            ]
        if itype == "local_shell_call":
            action = item.get("action") or {}
            return [Event(Kind.COMMAND, _command_text("shell", action), timestamp=ts, data={"call_id": item.get("call_id")})]
        if itype == "function_call_output":
            call_id = item.get("call_id")
            if call_id in self._resolved_calls:
                return []
            output = item.get("output")
            exit_code = None
            if isinstance(output, dict):
                output = output.get("content", json.dumps(output))
            if isinstance(output, str) and output.startswith("{"):
                try:  # 0.4x: '{"output": "...", "metadata": {"exit_code": 0}}'
                    parsed = json.loads(output)
                    if isinstance(parsed, dict) and "output" in parsed:
                        exit_code = _int((parsed.get("metadata") or {}).get("exit_code"))
                        output = str(parsed["output"])
                except ValueError:
                    pass
            output = output if isinstance(output, str) else json.dumps(output)
            status, code, details = _output_status(output)
            if exit_code is None:
                exit_code = code
            elif status != CommandStatus.RUNNING:
                status = CommandStatus.FINISHED
            if isinstance(call_id, str) and status != CommandStatus.RUNNING:
                self._resolved_calls.add(call_id)
            return [Event(Kind.COMMAND_RESULT, _keep_end(output), timestamp=ts, exit_code=exit_code,
                          data={"call_id": call_id, **details}, status=status)]
        if itype == "reasoning":
            summary = item.get("summary")
            text = _text_of(summary) if isinstance(summary, list) else ""
            return [Event(Kind.REASONING, text, timestamp=ts)] if text else []
        return []

    def _event_msg(self, msg: dict, ts: str | None) -> list[Event]:
        mtype = msg.get("type")
        if mtype == "task_complete":
            error = msg.get("error")
            if error:
                message = error.get("message") if isinstance(error, dict) else str(error)
                return [Event(Kind.OUTCOME, str(message or "failed"), timestamp=ts, outcome=Outcome.FAILED)]
            last = msg.get("last_agent_message")
            return [Event(Kind.OUTCOME, str(last or ""), timestamp=ts, outcome=Outcome.COMPLETED)]
        if mtype == "turn_aborted":
            return [Event(Kind.OUTCOME, str(msg.get("reason") or "aborted"), timestamp=ts, outcome=Outcome.INTERRUPTED)]
        if mtype == "token_count":
            info = msg.get("info")
            if isinstance(info, dict):
                total_usage = _usage(info.get("total_token_usage"))
                total = total_usage.get("total_tokens")
                if total is not None:
                    self._total_usage = total_usage
                    return [Event(Kind.TOKENS, timestamp=ts, tokens=total,
                                  data={"usage": _usage(info.get("last_token_usage")), "total_usage": dict(total_usage)})]
            return []
        if mtype in ("error", "stream_error"):
            return [Event(Kind.ERROR, str(msg.get("message", "error")), timestamp=ts)]
        if mtype == "item_completed":
            item = msg.get("item")
            if isinstance(item, dict) and item.get("type") == "CommandExecution":
                return self._command_result(item.get("id"), item.get("exit_code"), item.get("aggregated_output"), ts,
                                            item.get("status"))
            return []
        if mtype == "exec_command_end":
            output = msg.get("aggregated_output")
            if not isinstance(output, str):
                output = "".join(str(msg.get(k) or "") for k in ("stdout", "stderr"))
            return self._command_result(msg.get("call_id"), msg.get("exit_code"), output, ts)
        return []

    def _command_result(self, call_id: object, exit_code: object, output: object, ts: str | None,
                        status: object = None) -> list[Event]:
        if isinstance(call_id, str):
            if call_id in self._resolved_calls:
                return []
            self._resolved_calls.add(call_id)
        text = output if isinstance(output, str) else ""
        code = _int(exit_code)
        if status == "in_progress":
            state = CommandStatus.RUNNING
        elif (code is not None and code < 0) or (code is None and status in ("failed", "declined")):
            # item_completed says `"status": "failed", "exit_code": -1` for a command that was
            # stopped (interrupted, or still running when the turn ended): no exit code of its own.
            state, code = CommandStatus.ABORTED, None
        else:
            state = CommandStatus.FINISHED
        return [Event(Kind.COMMAND_RESULT, _keep_end(text), timestamp=ts, exit_code=code, data={"call_id": call_id}, status=state)]


class SessionSummary(Fields):
    """What a whole session says about itself, folded from its events in order."""

    FIELDS = ("session_id", "cwd", "cli_version", "model", "prompt", "outcome", "outcome_text", "tokens",
              "token_usage", "last_timestamp")

    def __init__(self, session_id: str | None = None, cwd: str | None = None, cli_version: str | None = None,
                 model: str | None = None, prompt: str | None = None, outcome: str | None = None,
                 outcome_text: str | None = None, tokens: int | None = None, token_usage: dict | None = None,
                 last_timestamp: str | None = None) -> None:
        self.session_id = session_id
        self.cwd = cwd
        self.cli_version = cli_version
        self.model = model
        self.prompt = prompt
        self.outcome = outcome
        self.outcome_text = outcome_text
        self.tokens = tokens
        # The running total in detail (input_tokens, cached_input_tokens, output_tokens,
        # reasoning_output_tokens, total_tokens: those Codex wrote).
        self.token_usage = token_usage
        self.last_timestamp = last_timestamp

    def add(self, event: Event) -> None:
        if event.timestamp:
            self.last_timestamp = event.timestamp
        if event.kind == Kind.META:
            self.session_id = self.session_id or event.data.get("session_id")
            self.cwd = self.cwd or event.data.get("cwd")
            self.cli_version = self.cli_version or event.data.get("cli_version")
        elif event.kind == Kind.MODEL:
            self.model = event.text
        elif event.kind == Kind.PROMPT and self.prompt is None:
            self.prompt = event.text
        elif event.kind == Kind.TOKENS:
            self.tokens = event.tokens
            if event.data.get("total_usage"):
                self.token_usage = dict(event.data["total_usage"])
        elif event.kind == Kind.OUTCOME:
            self.outcome, self.outcome_text = event.outcome, event.text


def parse_lines(lines) -> list[Event]:
    parser = SessionParser()
    events: list[Event] = []
    for line in lines:
        events.extend(parser.feed(line))
    return events
