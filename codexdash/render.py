"""Session events as readable lines, shared by the CLI and the dashboard.

Everything shown comes from files that an agent and its tools wrote: control characters and
terminal escapes are made visible here, once, so no content can drive the terminal. Styles are
names; each front end maps them to its own colours.
"""

from __future__ import annotations

import json
import re
from collections import namedtuple

from codexdash.events import CommandStatus, Event, Kind, Outcome

OUTPUT_LINES_SHOWN = 12

# C0 controls but tab and newline, DEL, C1 controls, the bidirectional overrides that can
# make text read differently from what it is, and lone surrogates (JSON can carry them, and a
# stream with surrogateescape would write them out as raw bytes such as 0x9B, a C1 CSI).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _visible(match: re.Match) -> str:
    ch = match.group()
    code = ord(ch)
    if code < 0x20:
        return "^" + chr(code + 0x40)
    if code == 0x7F:
        return "^?"
    return f"<U+{code:04X}>"


def sanitize(text: str) -> str:
    """The text with every control character shown as inert characters (ESC becomes ^[)."""
    return _UNSAFE.sub(_visible, text.replace("\t", "    "))


# A line to show: its style (prompt, agent, command, output, ok, error, dim, notice) and text.
# collections' namedtuple, the class typing.NamedTuple makes, without importing typing.
Line = namedtuple("Line", ["style", "text"])


def _block(prefix: str, style: str, text: str, indent: str = "  ") -> list[Line]:
    lines = sanitize(text).split("\n")
    out = [Line(style, prefix + lines[0])]
    out.extend(Line(style, indent + line) for line in lines[1:])
    return out


def render_event(event: Event) -> list[Line]:
    kind = event.kind
    if kind == Kind.META:
        d = event.data
        parts = [f"session {d.get('session_id') or '?'}"]
        if d.get("cli_version"):
            parts.append(f"codex {d['cli_version']}")
        if d.get("cwd"):
            parts.append(str(d["cwd"]))
        return [Line("dim", sanitize("── " + " · ".join(parts)))]
    if kind == Kind.MODEL:
        return [Line("dim", sanitize(f"   model {event.text}"))]
    if kind == Kind.PROMPT:
        return _block("› ", "prompt", event.text)
    if kind == Kind.AGENT:
        return _block("• ", "agent", event.text)
    if kind == Kind.REASONING:
        return _block("  ", "dim", event.text)
    if kind == Kind.COMMAND:
        return _block("$ ", "command", event.text)
    if kind == Kind.COMMAND_RESULT:
        return _render_result(event)
    if kind == Kind.TOKENS:
        return []  # running totals: shown once, by the front end (pane title, end of `logs`)
    if kind == Kind.OUTCOME:
        if event.outcome == Outcome.COMPLETED:
            return _block("✔ completed", "ok", _reason(event.text, "completed"))
        if event.outcome == Outcome.FAILED:
            return _block("✖ failed", "error", _reason(event.text, "failed"))
        return _block("■ interrupted", "error", _reason(event.text, "interrupted", "aborted"))
    if kind == Kind.ERROR:
        return _block("✖ error: ", "error", event.text)
    return _block("! ", "notice", event.text)


def _reason(text: str, *same: str) -> str:
    """`: text` after an outcome, unless it only repeats it (`■ interrupted`, not
    `■ interrupted: interrupted`)."""
    return "" if not text.strip() or text.strip().lower() in same else f": {text}"


def _render_result(event: Event) -> list[Line]:
    if event.status == CommandStatus.RUNNING:
        head = Line("dim", "  ↳ still running (handed back to the model)")
    elif event.status == CommandStatus.ABORTED:
        head = Line("error", "  ↳ aborted")
    elif event.exit_code is None:
        head = Line("dim", "  ↳ finished")
    elif event.exit_code == 0:
        head = Line("ok", "  ↳ exit 0")
    else:
        head = Line("error", f"  ↳ exit {event.exit_code}")
    output = event.text.rstrip("\n")
    if not output:
        return [head]
    # Only the lines shown are made safe: sanitize() neither adds nor removes a newline, and an
    # output is kept up to 16 K characters, of which a dozen lines are shown.
    shown = output.rsplit("\n", OUTPUT_LINES_SHOWN)
    earlier = output.count("\n") + 1 - OUTPUT_LINES_SHOWN
    out = [head]
    if earlier > 0:
        out.append(Line("dim", f"    … {earlier} earlier lines"))
        del shown[0]
    out.extend(Line("output", "    " + sanitize(line)) for line in shown)
    return out


def render_tokens(total: int | None) -> Line:
    return Line("dim", f"   Σ {total:,} tokens" if total is not None else "   Σ tokens unknown")


def render_events(events) -> list[Line]:
    out: list[Line] = []
    for event in events:
        out.extend(render_event(event))
    return out


def render_raw(line: bytes | str) -> Line:
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    return Line("dim", sanitize(line.rstrip("\n")))


_ENVELOPE = {"timestamp", "ordinal", "type", "payload"}


def render_record(line: bytes | str) -> list[Line]:
    """One line of a session file as a reader wants it: a heading with the record's type (and
    its payload's), time and ordinal, then its JSON pretty-printed, two spaces an indent."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    line = line.strip()
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return [Line("notice", f"▸ not JSON ({len(line)} characters)"), Line("output", sanitize(line))]
    body = record
    if isinstance(record, dict) and isinstance(record.get("payload"), dict) and set(record) <= _ENVELOPE:
        payload = record["payload"]
        names = [str(record.get("type")), *([str(payload["type"])] if "type" in payload else [])]
        head = "▸ " + " · ".join(names)
        if record.get("timestamp") is not None:
            head += f"  {record['timestamp']}"
        if record.get("ordinal") is not None:
            head += f"  #{record['ordinal']}"
        body = payload
    elif isinstance(record, dict):
        head = f"▸ {record['type']}" if "type" in record else "▸ record"
    else:
        head = f"▸ {type(record).__name__}"
    try:
        text = json.dumps(body, indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        text = line
    return [Line("prompt", sanitize(head)), *(Line("output", sanitize(part)) for part in text.split("\n"))]


def render_part(label: str, current: bool) -> Line:
    """The rule that opens one job's part of a shared session file (a follow-up's turn)."""
    return Line("part-current" if current else "part", sanitize(("━━ ▶ " if current else "━━ ") + label))


def undecodable(text: str) -> str | None:
    """None for text that is valid UTF-8; else the text with its undecodable bytes as \\xNN."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
