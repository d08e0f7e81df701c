"""What a session says its job edited: the file-change records Codex writes, and the patches of
its calls where there are no records. Measured with 0.169 and 0.171 (see docs/COMPATIBILITY.md):

- `event_msg` `item_completed` whose `item.type` is `FileChange`: `id` (the tool call's id),
  `status` (`completed`, `failed`, `declined`) and `changes`, a map from absolute path to
  `{"type": "add", "content"}`, `{"type": "delete", "content"}` or
  `{"type": "update", "unified_diff", "move_path"}`. Codex writes it for its `apply_patch` tool
  and for `apply_patch <<'EOF'` run through the shell tool, which it intercepts.
- `event_msg` `patch_apply_end` (`call_id`, `success`, `changes`, `status`), the same facts in
  the event form of other releases, whose `changes` may be externally tagged
  (`{"add": {"content"}}`, `{"update": {"unified_diff", "move_path"}}`, `{"delete": {...}}`).
- The call itself, `response_item` `custom_tool_call` `apply_patch` (the patch text is its
  `input`) or a `function_call` carrying the patch: read only for a call that has neither
  record above, and counted as applied only when its output says so.

Other commands can change files too; which ones they changed cannot be read reliably from a
command line, so they are only counted.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

# Only lines that may carry a file edit are parsed (the rest of a session can be large).
_INTERESTING = (b"FileChange", b"patch_apply_end", b"apply_patch", b"_call", b"session_meta", b"turn_context",
                b"CommandExecution")
_SHELL_TOOLS = {"shell", "exec_command", "container.exec", "local_shell", "shell_command"}
_HEREDOC = re.compile(
    r"^\s*(?:cd\s+(?P<dir>'[^']*'|\"[^\"]*\"|\S+)\s*&&\s*)?(?:apply_patch|applypatch)\s+<<-?\s*(?P<q>['\"]?)(?P<tag>\w+)(?P=q)[ \t]*\n"
    r"(?P<body>.*?)\n(?P=tag)\s*$",
    re.S,
)
_SUCCESS = "Success. Updated the following files"

class Action:
    ADDED = "added"
    UPDATED = "updated"
    DELETED = "deleted"
    MOVED = "moved"  # moved away (to `moved_to`), maybe edited too
    TRANSIENT = "added and deleted"


class Status:
    APPLIED = "applied"
    FAILED = "failed"  # the patch failed: part of it may have been applied
    UNCONFIRMED = "unconfirmed"  # no result recorded (still running, or the job was killed)



@dataclass
class _Op:
    kind: str  # add, update, delete, move_out, move_in
    diff: str = ""  # what the session recorded, as unified-diff lines (hunks only)
    other: str | None = None  # the other end of a move


@dataclass
class TouchedFile:
    """One file as the session tells it: what happened to it, in order."""

    path: str
    ops: list[_Op] = field(default_factory=list)
    status: str = Status.APPLIED

    @property
    def action(self) -> str:
        before = self.ops[0].kind in ("update", "delete", "move_out")
        after = self.ops[-1].kind in ("add", "update", "move_in")
        if before and after:
            return Action.UPDATED
        if before:
            return Action.MOVED if self.ops[-1].kind == "move_out" else Action.DELETED
        return Action.ADDED if after else Action.TRANSIENT

    @property
    def moved_to(self) -> str | None:
        return self.ops[-1].other if self.ops[-1].kind == "move_out" else None

    @property
    def moved_from(self) -> str | None:
        return self.ops[0].other if self.ops[0].kind == "move_in" else None


@dataclass
class _Call:
    patch: str | None = None  # the patch text, from the call
    cwd: str | None = None  # where its relative paths point
    recorded: dict | None = None  # changes from a FileChange / patch_apply_end record
    status: str | None = None
    output: str | None = None


@dataclass
class SessionChanges:
    """The files one turn of a session touched, and what else it says about the place."""

    files: dict[str, TouchedFile] = field(default_factory=dict)
    cwd: str | None = None  # the session's (a worktree job: its worktree)
    git_commit: str | None = None  # session_meta.git.commit_hash: HEAD where the session started
    commands: int = 0  # other commands run: what they changed is not listed
    failed_patches: int = 0  # failed while applying: part of it may be applied
    refused_patches: int = 0  # refused before touching anything (did not verify)
    declined_patches: int = 0


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _abs(path: str, cwd: str | None) -> str:
    if path.startswith("file://"):
        path = path[len("file://"):]
    if not os.path.isabs(path) and cwd:
        path = os.path.join(cwd, path)
    return os.path.normpath(path)


def _as_lines(content: str, mark: str) -> str:
    if not content:
        return ""
    lines = content.split("\n")
    if lines[-1] == "":
        lines.pop()
    return "".join(f"{mark}{line}\n" for line in lines)


def _recorded_ops(changes: dict, cwd: str | None) -> list[tuple[str, _Op]]:
    """Codex's FileChange map as (path, op) pairs, in both the tagged and the older form."""
    out: list[tuple[str, _Op]] = []
    for raw_path, change in changes.items():
        if not isinstance(raw_path, str):
            continue
        path = _abs(raw_path, cwd)
        kind, data = None, {}
        if isinstance(change, dict) and isinstance(change.get("type"), str):
            kind, data = change["type"], change
        elif isinstance(change, dict) and len(change) == 1:
            kind, data = next(iter(change.items()))
            data = data if isinstance(data, dict) else {}
        elif isinstance(change, str):
            kind = change  # "delete" as a unit variant in early releases
        if kind == "add":
            out.append((path, _Op("add", _as_lines(_text(data.get("content")), "+"))))
        elif kind == "delete":
            out.append((path, _Op("delete", _as_lines(_text(data.get("content")), "-"))))
        elif kind == "update":
            diff = _text(data.get("unified_diff"))
            move = data.get("move_path")
            if isinstance(move, str) and move:
                dest = _abs(move, cwd)
                out.append((path, _Op("move_out", diff, other=dest)))
                out.append((dest, _Op("move_in", other=path)))
            else:
                out.append((path, _Op("update", diff)))
    return out


def parse_patch(text: str, cwd: str | None) -> list[tuple[str, _Op]]:
    """The files a `*** Begin Patch` text adds, deletes, updates and moves."""
    out: list[tuple[str, _Op]] = []
    current: tuple[str, _Op] | None = None
    for line in text.split("\n"):
        if line.startswith("*** Add File: "):
            current = (_abs(line[14:].strip(), cwd), _Op("add"))
            out.append(current)
        elif line.startswith("*** Delete File: "):
            current = None
            out.append((_abs(line[17:].strip(), cwd), _Op("delete")))
        elif line.startswith("*** Update File: "):
            current = (_abs(line[17:].strip(), cwd), _Op("update"))
            out.append(current)
        elif line.startswith("*** Move to: ") and current is not None and current[1].kind == "update":
            dest = _abs(line[13:].strip(), cwd)
            current[1].kind, current[1].other = "move_out", dest
            out.append((dest, _Op("move_in", other=current[0])))
        elif line.startswith("*** "):
            current = None if line.startswith(("*** End Patch", "*** Begin Patch")) else current
        elif current is not None and line[:1] in ("+", "-", " ", "@"):
            if current[1].kind == "add" and not line.startswith("+"):
                continue
            current[1].diff += line + "\n"
    return out


def _patch_of_call(name: str, arguments: object) -> tuple[str | None, str | None]:
    """The patch a function call carries (apply_patch itself, or through a shell), and its
    working directory when the call names one."""
    args: object = arguments
    if isinstance(arguments, str):
        try:
            args = json.loads(arguments)
        except ValueError:
            return (arguments, None) if name == "apply_patch" else (None, None)
    if not isinstance(args, dict):
        return None, None
    workdir = args.get("workdir") if isinstance(args.get("workdir"), str) else None
    if name == "apply_patch":
        for key in ("input", "patch"):
            if isinstance(args.get(key), str):
                return args[key], workdir
        return None, None
    if name not in _SHELL_TOOLS:
        return None, None
    cmd = args.get("cmd", args.get("command"))
    if isinstance(cmd, list) and cmd and all(isinstance(c, str) for c in cmd):
        if cmd[0] in ("apply_patch", "applypatch") and len(cmd) == 2:
            return cmd[1], workdir
        cmd = cmd[2] if len(cmd) == 3 and cmd[1] in ("-lc", "-c") else None
    if isinstance(cmd, str) and (m := _HEREDOC.match(cmd)):
        where = m.group("dir")
        if where:
            where = where.strip("'\"")
            workdir = os.path.join(workdir, where) if workdir and not os.path.isabs(where) else where
        return m.group("body"), workdir
    return None, None


def read_turn_lines(path: str | Path, start: int = 0, end: int | None = None) -> Iterable[bytes]:
    """The complete lines of a session file from byte `start` up to byte `end` (compressed
    files are read through their decompressed bytes, where the offsets point)."""
    from codexdash.tail import session_stream

    with session_stream(path, whole=False) as fh:
        pos = 0
        if start:
            while pos < start:
                skipped = fh.read(min(1 << 20, start - pos))
                if not skipped:
                    return
                pos += len(skipped)
        while end is None or pos < end:
            line = fh.readline()
            if not line or not line.endswith(b"\n"):
                return  # the end, or a line still being written
            pos += len(line)
            yield line


def session_changes(lines: Iterable[bytes | str], default_cwd: str | None = None) -> SessionChanges:
    """The files a turn's lines say were edited (nothing here raises on bad input)."""
    result = SessionChanges(cwd=default_cwd)
    calls: dict[str, _Call] = {}
    commands: set[str] = set()
    turn_cwd = default_cwd
    anonymous = 0
    for line in lines:
        raw = line.encode() if isinstance(line, str) else line
        if not any(marker in raw for marker in _INTERESTING):
            continue
        try:
            record = json.loads(raw)
        except (ValueError, RecursionError):
            continue
        if not isinstance(record, dict):
            continue
        payload = record.get("payload") if isinstance(record.get("payload"), dict) else record
        rtype = record.get("type")
        try:
            if rtype == "session_meta":
                if isinstance(payload.get("cwd"), str):
                    result.cwd = turn_cwd = payload["cwd"]
                git = payload.get("git")
                if isinstance(git, dict) and isinstance(git.get("commit_hash"), str):
                    result.git_commit = git["commit_hash"]
                continue
            if rtype == "turn_context":
                if isinstance(payload.get("cwd"), str):
                    turn_cwd = payload["cwd"]
                    result.cwd = result.cwd or turn_cwd
                continue
            item_type = payload.get("type")
            if rtype == "event_msg" and item_type == "item_completed":
                item = payload.get("item")
                if isinstance(item, dict) and item.get("type") == "FileChange" and isinstance(item.get("changes"), dict):
                    call_id = str(item.get("id") or f"anonymous-{anonymous}")
                    anonymous += 1
                    call = calls.setdefault(call_id, _Call(cwd=turn_cwd))
                    call.recorded, call.status = item["changes"], str(item.get("status") or "completed")
                elif isinstance(item, dict) and item.get("type") == "CommandExecution" and isinstance(item.get("id"), str):
                    if item["id"] not in calls:
                        commands.add(item["id"])
                continue
            if rtype == "event_msg" and item_type == "patch_apply_end":
                call = calls.setdefault(str(payload.get("call_id")), _Call(cwd=turn_cwd))
                status = payload.get("status")
                call.status = str(status) if isinstance(status, str) else ("completed" if payload.get("success") else "failed")
                if isinstance(payload.get("changes"), dict) and payload["changes"]:
                    call.recorded = payload["changes"]
                continue
            if rtype == "response_item" or rtype in ("function_call", "custom_tool_call", "function_call_output",
                                                     "custom_tool_call_output", "local_shell_call"):
                _response_item(payload, turn_cwd, calls, commands)
        except (TypeError, AttributeError, ValueError):
            continue  # a known type of an unexpected shape: skipped, as unknown types are
    result.commands = len(commands - set(calls))
    for call in calls.values():
        _fold_call(call, result)
    return result


def _response_item(item: dict, cwd: str | None, calls: dict[str, _Call], commands: set[str]) -> None:
    itype = item.get("type")
    call_id = item.get("call_id")
    if not isinstance(call_id, str):
        return
    if itype == "custom_tool_call" and item.get("name") == "apply_patch":
        calls.setdefault(call_id, _Call(cwd=cwd)).patch = _text(item.get("input"))
    elif itype == "function_call":
        patch, workdir = _patch_of_call(str(item.get("name")), item.get("arguments"))
        if patch is not None:
            call = calls.setdefault(call_id, _Call(cwd=cwd))
            call.patch = patch
            if workdir:
                call.cwd = _abs(workdir, cwd)
        else:
            commands.add(call_id)
    elif itype == "local_shell_call":
        action = item.get("action") or {}
        patch, workdir = _patch_of_call("shell", {"command": action.get("command"), "workdir": action.get("working_directory")})
        if patch is not None:
            calls.setdefault(call_id, _Call(cwd=_abs(workdir, cwd) if workdir else cwd)).patch = patch
        else:
            commands.add(call_id)
    elif itype in ("custom_tool_call_output", "function_call_output") and call_id in calls:
        output = item.get("output")
        calls[call_id].output = output if isinstance(output, str) else json.dumps(output)


def _fold_call(call: _Call, result: SessionChanges) -> None:
    if call.recorded is not None:
        if call.status == "declined":
            result.declined_patches += 1
            return
        status = Status.FAILED if call.status == "failed" else Status.APPLIED
        ops = _recorded_ops(call.recorded, call.cwd)
    elif call.patch is not None:
        if call.status == "declined":
            result.declined_patches += 1
            return
        if call.status == "failed":
            status = Status.FAILED
        elif call.status == "completed":
            status = Status.APPLIED
        elif call.output is None:
            status = Status.UNCONFIRMED
        elif _SUCCESS in call.output:
            status = Status.APPLIED
        else:
            result.refused_patches += 1  # its output says why; it touched nothing
            return
        ops = parse_patch(call.patch, call.cwd)
    else:
        return
    if status == Status.FAILED:
        result.failed_patches += 1
    for path, op in ops:
        touched = result.files.setdefault(path, TouchedFile(path))
        touched.ops.append(op)
        if status != Status.APPLIED:
            touched.status = status
