"""What a job changed: the files its session says it edited, and their diffs.

Read from the job's own turn of its session file (a follow-up's turn starts at its
`turn_offset`; a job's turn ends where the next follow-up's begins). What Codex records, measured
with 0.169 and 0.171 (see docs/COMPATIBILITY.md):

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
command line, so they are only counted. In a worktree that Codex made for the job, everything
that differs from the worktree's first commit is the job's, and is listed.

Where the files are in a Git work tree, each is shown as `git diff` shows it against the state
when the job started: a snapshot of the work tree (a Git tree of its tracked and untracked,
not ignored, files, made in a scratch index when the job starts); for a worktree Codex made,
the commit it was made from; for older records, HEAD (the last commit, not the state before
the job; new untracked files are then shown whole). Elsewhere the diffs are those the session
recorded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from codexdash.render import Line, sanitize

GIT_TIMEOUT = 30.0
SNAPSHOT_TIMEOUT = 5.0
# Untracked files are part of the start snapshot only while they add up to less than this.
SNAPSHOT_UNTRACKED_BYTES = 64 << 20
# A diff longer than this is cut, with a note: the dashboard and the terminal stay usable.
MAX_DIFF_CHARS = 2_000_000
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
_EMPTY_TREE_SHA1 = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


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


_LETTER = {Action.ADDED: "A", Action.UPDATED: "M", Action.DELETED: "D", Action.MOVED: "R", Action.TRANSIENT: "±"}
_LETTER_STYLE = {"A": "ok", "M": "command", "D": "error", "R": "agent", "±": "dim"}


# ---- reading the session ----------------------------------------------------------------


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


# ---- Git ------------------------------------------------------------------------------------


def _git_env(index: str | None = None) -> dict[str, str]:
    # Nothing inherited may point git elsewhere (GIT_DIR, GIT_INDEX_FILE, ...).
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_OPTIONAL_LOCKS="0", GIT_TERMINAL_PROMPT="0", LC_ALL="C", GIT_PAGER="cat")
    if index is not None:
        env["GIT_INDEX_FILE"] = index
    return env


# The files are the agent's: no configured program runs on them for a diff (external diff, text
# conversion, file-system monitor), and a file name is never read as a pathspec pattern.
_GIT = ("git", "--no-pager", "--literal-pathspecs", "-c", "core.fsmonitor=false", "-c", "core.quotepath=on",
        "-c", "color.ui=never", "-c", "diff.noprefix=false", "-c", "diff.mnemonicprefix=false", "-c", "diff.relative=false",
        "-c", "core.safecrlf=false", "-c", "advice.addIgnoredFile=false")
_DIFF_OPTS = ("--no-ext-diff", "--no-textconv", "--no-color", "--no-renames")


def _git(cwd: str, *args: str, timeout: float = GIT_TIMEOUT, ok: tuple[int, ...] = (0,),
         index: str | None = None) -> bytes | None:
    try:
        done = subprocess.run([*_GIT, *args], cwd=cwd, env=_git_env(index), stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode in ok else None


def _has_git_dir(path: str) -> bool:
    """Cheap: a `.git` in the directory or above (no subprocess where there is none)."""
    p = Path(path)
    for d in (p, *p.parents):
        if (d / ".git").exists():
            return True
    return False


def work_tree_root(path: str) -> str | None:
    """The top of the Git work tree holding `path`, or None."""
    if not path or not os.path.isdir(path) or not _has_git_dir(path):
        return None
    out = _git(path, "rev-parse", "--show-toplevel")
    if not out:
        return None
    return out.decode("utf-8", "surrogateescape").rstrip("\n") or None


def _head(root: str) -> str | None:
    out = _git(root, "rev-parse", "--verify", "-q", "HEAD^{commit}")
    return out.decode().strip() if out else None


class _ScratchIndex:
    """A copy of the work tree's index in a temporary file: files are staged there, never in
    the user's index, so nothing the user sees in `git status` changes."""

    def __init__(self, root: str, timeout: float = GIT_TIMEOUT) -> None:
        self.root, self.timeout = root, timeout
        fd, self.path = tempfile.mkstemp(prefix="codexdash-index-")
        os.close(fd)
        out = _git(root, "rev-parse", "--git-path", "index", timeout=timeout)
        real = os.path.join(root, out.decode("utf-8", "surrogateescape").strip()) if out else None
        try:
            if real is None:
                raise FileNotFoundError
            # Its stat data spares hashing unchanged files again. Its time is kept too: Git reads
            # a file changed in the same second as the index was written as "racily clean" and
            # compares contents; a copy dated now would make such a same-size edit look unchanged.
            shutil.copy2(real, self.path)
        except OSError:
            os.unlink(self.path)  # no index yet: git starts an empty one

    def git(self, *args: str, ok: tuple[int, ...] = (0,)) -> bytes | None:
        return _git(self.root, *args, timeout=self.timeout, ok=ok, index=self.path)

    def add(self, rels: list[str]) -> None:
        """Stages the files as they are now (removals too), ignored ones included."""
        if not rels:
            return
        if self.git("add", "-A", "-f", "--", *rels) is None:
            for rel in rels:  # one bad path (beyond a symlink, in a submodule) spoils only itself
                self.git("add", "-A", "-f", "--", rel)

    def close(self) -> None:
        for path in (self.path, self.path + ".lock"):
            try:
                os.unlink(path)
            except OSError:
                pass

    def __enter__(self) -> _ScratchIndex:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


def start_snapshot(cwd: str, include_changes: bool = True) -> str | None:
    """What the work tree holds now, as a Git tree, so that a job's diff can later be taken
    against the state before it ran: tracked files as they are (changes included) and untracked
    ones that are not ignored, staged in a scratch index (no file, ref or index of the user's
    changes). With `include_changes` False, or when that cannot be done in time: HEAD. None
    outside Git or in a repository without a commit."""
    root = work_tree_root(cwd)
    if root is None:
        return None
    if include_changes:
        with _ScratchIndex(root, timeout=SNAPSHOT_TIMEOUT) as index:
            # Git keeps what it stages (unreferenced, until `git gc` prunes it): untracked files
            # are left out when they are big, and are then shown whole if the job edits them.
            untracked = _listed(index.git("ls-files", "-z", "--others", "--exclude-standard"))
            scope = "-A" if _total_size(root, untracked, SNAPSHOT_UNTRACKED_BYTES) <= SNAPSHOT_UNTRACKED_BYTES else "-u"
            if index.git("add", scope, "--", ".") is not None:
                out = index.git("write-tree")
                if out and out.strip():
                    return out.decode().strip()
        return None  # too slow or failed: the diff says it compares with the last commit
    out = _git(root, "rev-parse", "--verify", "-q", "HEAD^{commit}", timeout=SNAPSHOT_TIMEOUT)
    return out.decode().strip() if out else None


def _total_size(root: str, rels: Iterable[str], stop_above: int) -> int:
    total = 0
    for rel in rels:
        try:
            total += os.lstat(os.path.join(root, rel)).st_size
        except OSError:
            continue
        if total > stop_above:
            break
    return total


def _exists(root: str, rev: str) -> bool:
    return _git(root, "cat-file", "-e", f"{rev}^{{tree}}") is not None


def _listed(out: bytes | None) -> set[str]:
    if not out:
        return set()
    return {p.decode("utf-8", "surrogateescape") for p in out.split(b"\0") if p}


# ---- the job's changes ------------------------------------------------------------------------


@dataclass
class ChangedFile:
    path: str  # absolute
    display: str  # relative to the work tree (or the cwd) where it is under it
    action: str
    status: str = Status.APPLIED
    source: str = "patch"  # "patch": a recorded edit; "worktree": found changed in the job's worktree
    moved_to: str | None = None
    moved_from: str | None = None
    exists: bool = False
    diff: str = ""
    diff_source: str = "none"  # git, session, none
    insertions: int = 0
    deletions: int = 0
    binary: bool = False
    note: str | None = None

    @property
    def letter(self) -> str:
        return _LETTER.get(self.action, "?")

    def as_json(self, with_diff: bool = True) -> dict:
        data = {
            "path": self.path, "display": self.display, "action": self.action, "status": self.status,
            "source": self.source, "moved_to": self.moved_to, "moved_from": self.moved_from, "exists": self.exists,
            "insertions": self.insertions, "deletions": self.deletions, "binary": self.binary,
            "diff_source": self.diff_source, "note": self.note,
        }
        if with_diff:
            data["diff"] = self.diff
        return data


@dataclass
class Changes:
    """A job's changes, ready to print (`lines`) or to hand to a program (`as_json`)."""

    job_id: str
    cwd: str  # where the job ran: its worktree when it has one
    worktree: str | None = None
    git_root: str | None = None
    base: str | None = None
    base_label: str | None = None
    files: list[ChangedFile] = field(default_factory=list)
    commands: int = 0
    notes: list[str] = field(default_factory=list)
    until: str | None = None  # the next follow-up's start snapshot, where this job's part ends
    until_files: set[str] = field(default_factory=set)

    @property
    def insertions(self) -> int:
        return sum(f.insertions for f in self.files)

    @property
    def deletions(self) -> int:
        return sum(f.deletions for f in self.files)

    @classmethod
    def from_json(cls, data: dict) -> Changes:
        """Changes as `as_json` wrote them (on another box): each field of the wrong type is
        left at its default; the text is made inert again when it is shown (`lines`)."""
        def pick(source: dict, names, defaults) -> dict:
            kept = {}
            for n in names:
                value, default = source.get(n), getattr(defaults, n)
                wanted = str if default is None else type(default)
                if isinstance(value, wanted) and (wanted is bool or not isinstance(value, bool)):
                    kept[n] = value
            return kept

        blank_file = ChangedFile(path="", display="", action="")
        file_fields = [f for f in ChangedFile.__dataclass_fields__ if f not in ("path", "display", "action")]
        files = []
        for f in data.get("files") or []:
            if isinstance(f, dict) and all(isinstance(f.get(k), str) for k in ("path", "display", "action")):
                files.append(ChangedFile(path=f["path"], display=f["display"], action=f["action"],
                                         **pick(f, file_fields, blank_file)))
        blank = cls(job_id="", cwd="")
        changes = cls(job_id=str(data.get("id") or "?"), cwd=str(data.get("cwd") or ""),
                      **pick(data, ("worktree", "git_root", "base", "base_label", "commands", "until"), blank))
        changes.notes = [n for n in data.get("notes") or [] if isinstance(n, str)]
        changes.files = files
        return changes

    def as_json(self, with_diff: bool = True) -> dict:
        return {
            "id": self.job_id, "cwd": self.cwd, "worktree": self.worktree, "git_root": self.git_root,
            "base": self.base, "until": self.until, "base_label": self.base_label, "commands": self.commands,
            "notes": self.notes,
            "insertions": self.insertions, "deletions": self.deletions,
            "files": [f.as_json(with_diff) for f in self.files],
        }

    def header(self) -> list[Line]:
        n = len(self.files)
        where = f"Git work tree {self.git_root}" if self.git_root else f"{self.cwd} (not a Git work tree)"
        out = [Line("dim", sanitize(f"── job {self.job_id} · {n} file{'s' if n != 1 else ''} changed · {where}"))]
        if self.worktree:
            out.append(Line("dim", sanitize(f"   in its worktree {self.worktree}")))
        if self.base_label:
            out.append(Line("dim", sanitize(f"   against {self.base_label}")))
        elif not self.git_root and self.files:
            out.append(Line("dim", "   as the session recorded each edit"))
        for note in self.notes:
            out.append(Line("notice", sanitize(f"! {note}")))
        return out

    def file_lines(self) -> list[Line]:
        out = []
        for f in self.files:
            text = f"{f.letter} {f.display}"
            if f.moved_to:
                text += f" → {_display(f.moved_to, self.git_root or self.cwd)}"
            if f.moved_from:
                text += f" (moved from {_display(f.moved_from, self.git_root or self.cwd)})"
            extra = [x for x in (f.status if f.status != Status.APPLIED else None, f.note) if x]
            if extra:
                text += f"  ({'; '.join(extra)})"
            out.append(Line(_LETTER_STYLE.get(f.letter, "output"), sanitize(text)))
        return out

    def stat_lines(self) -> list[Line]:
        if not self.files:
            return []
        names = [sanitize(f"{f.letter} {f.display}") for f in self.files]
        width = max(len(n) for n in names)
        biggest = max((f.insertions + f.deletions for f in self.files), default=0)
        scale = min(1.0, 40 / biggest) if biggest else 1.0
        out = []
        for name, f in zip(names, self.files):
            if f.binary:
                figures = "Bin"
            else:
                plus = round(f.insertions * scale) if f.insertions else 0
                minus = round(f.deletions * scale) if f.deletions else 0
                plus = max(plus, 1 if f.insertions else 0)
                minus = max(minus, 1 if f.deletions else 0)
                figures = f"{f.insertions + f.deletions} {'+' * plus}{'-' * minus}".rstrip()
            out.append(Line(_LETTER_STYLE.get(f.letter, "output"), f" {name.ljust(width)} | {figures}"))
        n = len(self.files)
        summary = f" {n} file{'s' if n != 1 else ''} changed, {self.insertions} insertion{'s' if self.insertions != 1 else ''}(+), " \
                  f"{self.deletions} deletion{'s' if self.deletions != 1 else ''}(-)"
        out.append(Line("dim", summary))
        return out

    def diff_lines(self) -> list[Line]:
        out: list[Line] = []
        for f in self.files:
            if f.diff_source == "session":
                out.append(Line("dim", sanitize(f"── {f.display}: as the session recorded it")))
            elif f.diff_source == "none":
                why = f.note or "no diff"
                out.append(Line("dim", sanitize(f"── {f.display}: {why}")))
                continue
            out.extend(diff_text_lines(f.diff))
        return out

    def lines(self, stat: bool = False) -> list[Line]:
        """Everything as lines for a terminal or a pane: header, the list, then the diffs (or
        the per-file figures with `stat`). Every byte from files or Codex is made inert."""
        out = self.header()
        if not self.files:
            out.append(Line("dim", "   no changed files recorded"))
            return out
        if stat:
            return out + self.stat_lines()
        return out + self.file_lines() + [Line("output", "")] + self.diff_lines()


def _headers(lines: list[str]) -> set[int]:
    """Indexes of the file header lines of a diff (a `--- ` line is one only when a `+++ `
    line follows it: inside a hunk it is a removed line that starts with two dashes)."""
    heads: set[int] = set()
    in_hunk = False
    for i, line in enumerate(lines):
        if line.startswith("diff "):
            in_hunk = False
            heads.add(i)
        elif line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            in_hunk = False
            heads.update((i, i + 1))
        elif i in heads:
            continue
        elif line.startswith("@@"):
            in_hunk = True
        elif not in_hunk and line.startswith(("index ", "new file", "deleted file", "old mode", "new mode",
                                               "Binary files", "similarity", "rename ")):
            heads.add(i)
    return heads


def diff_text_lines(text: str) -> list[Line]:
    """A diff as styled lines, every control character made visible."""
    raws = text.rstrip("\n").split("\n") if text else []
    heads = _headers(raws)
    out = []
    for i, raw in enumerate(raws):
        line = sanitize(raw)
        if i in heads:
            out.append(Line("prompt", line))
        elif raw.startswith("@@"):
            in_hunk = True
            out.append(Line("agent", line))
        elif raw.startswith("+"):
            out.append(Line("ok", line))
        elif raw.startswith("-"):
            out.append(Line("error", line))
        else:
            out.append(Line("output", line))
    return out


def count_diff(text: str) -> tuple[int, int, bool]:
    """Insertions, deletions and whether git called it binary, from a diff's hunks only."""
    plus = minus = 0
    binary = False
    lines = text.split("\n")
    heads = _headers(lines)
    in_hunk = False
    for i, line in enumerate(lines):
        if i in heads:
            in_hunk = False
            binary = binary or line.startswith("Binary files ")
        elif line.startswith("@@"):
            in_hunk = True
        elif in_hunk and line.startswith("+"):
            plus += 1
        elif in_hunk and line.startswith("-"):
            minus += 1
    return plus, minus, binary


def _display(path: str, base: str | None) -> str:
    if base:
        try:
            rel = os.path.relpath(path, base)
        except ValueError:
            return path
        if not rel.startswith(".." + os.sep) and rel != "..":
            return rel
    return path


def _cut(text: str) -> str:
    if len(text) <= MAX_DIFF_CHARS:
        return text
    return text[:MAX_DIFF_CHARS] + f"\n[... {len(text) - MAX_DIFF_CHARS} more characters not shown ...]\n"


def _recorded_blocks(touched: TouchedFile, show) -> list[str]:
    """What the session recorded for one file, as unified-diff blocks, one per edit."""
    name = show(touched.path)
    blocks = []
    for op in touched.ops:
        n = op.diff.count("\n")
        if op.kind == "add":
            blocks.append(f"--- /dev/null\n+++ b/{name}\n" + (f"@@ -0,0 +1,{n} @@\n{op.diff}" if n else ""))
        elif op.kind == "delete":
            blocks.append(f"--- a/{name}\n+++ /dev/null\n" + (f"@@ -1,{n} +0,0 @@\n{op.diff}" if n else ""))
        elif op.kind in ("update", "move_out") and op.diff:
            body = op.diff if op.diff.startswith("@@") else "@@\n" + op.diff
            blocks.append(f"--- a/{name}\n+++ b/{show(op.other) if op.other else name}\n{body}")
    return blocks


def compute_changes(job_id: str, session: SessionChanges, cwd: str, worktree: str | None = None,
                    recorded_base: str | None = None, owns_tree: bool = False,
                    until: tuple[str, str] | None = None) -> Changes:
    """The files of `session` with their diffs: from Git where they are in a work tree, else
    as the session recorded them. `owns_tree`: the work tree is the job's alone (a worktree
    Codex made for it), so every change in it is listed, recorded or not. `until`: (snapshot,
    job id) of the follow-up that came next: the job's files as they were when it started."""
    where = worktree or session.cwd or cwd
    changes = Changes(job_id=job_id, cwd=where, worktree=worktree, commands=session.commands)
    if worktree and not os.path.isdir(worktree):
        changes.notes.append(f"its worktree {worktree} no longer exists: the files as the session recorded them")
    root = work_tree_root(where)
    changes.git_root = root
    shown_base = root or where
    touched = list(session.files.values())
    items = [(ChangedFile(path=t.path, display=_display(t.path, shown_base), action=t.action, status=t.status,
                          moved_to=t.moved_to, moved_from=t.moved_from), t) for t in touched]
    diffs: dict[str, str] = {}
    in_base: set[str] = set()
    if root:
        base = _pick_base(changes, root, session, recorded_base, owns_tree)
        if until and _exists(root, until[0]):
            changes.until = until[0]
            changes.base_label += f", up to the start of its follow-up {until[1]} (snapshot {until[0][:12]})"
            in_base = _until_diffs(changes, root, base, items, diffs, owns_tree)
        else:
            in_base = _worktree_diffs(root, base, items, diffs, owns_tree)
    for cf, t in items:
        rel = os.path.relpath(cf.path, root) if root and _under(cf.path, root) else None
        if changes.until and rel is not None:
            cf.exists = rel in changes.until_files
        else:
            cf.exists = os.path.lexists(cf.path)
        if t is None:
            cf.action = Action.UPDATED if rel in in_base and cf.exists else Action.DELETED if rel in in_base else Action.ADDED
        text = diffs.get(rel) if rel is not None else None
        if text is not None:
            cf.diff_source = "git" if text else "none"
            if not text:
                cf.note = cf.note or ("not there, as before the job" if not cf.exists else "no difference from the base now")
        elif t is not None:
            if root and rel is None:
                cf.note = "outside the Git work tree"
            text = "".join(_recorded_blocks(t, lambda p: _display(p, shown_base)))
            cf.diff_source = "session" if text else "none"
            if not text and not cf.note:
                cf.note = f"moved here from {_display(t.moved_from, shown_base)}" if t.moved_from else "nothing recorded"
        cf.diff = _cut(text or "")
        cf.insertions, cf.deletions, cf.binary = count_diff(cf.diff)
        changes.files.append(cf)
    _add_notes(changes, session, owns_tree)
    return changes


def _found_in_worktree(root: str, names: bytes | None, items: list) -> None:
    """Adds the files a job's own worktree shows changed that no recorded edit names."""
    known = {cf.path for cf, _t in items}
    for rel in sorted(_listed(names)):
        path = os.path.normpath(os.path.join(root, rel))
        if path not in known:
            items.append((ChangedFile(path=path, display=rel, action="", source="worktree",
                                      note="changed in its worktree, by a command"), None))


def _worktree_diffs(root: str, base: str, items: list, diffs: dict[str, str], owns_tree: bool) -> set[str]:
    """Diffs of the files as they are now against `base`, staged in a scratch index so that
    untracked and deleted files are compared as well. Returns the paths `base` holds."""
    with _ScratchIndex(root) as index:
        if owns_tree:  # everything in the job's own worktree is the job's (ignored files aside)
            index.git("add", "-A", "--", ".")
            _found_in_worktree(root, index.git("diff", "--cached", "--name-only", "-z", *_DIFF_OPTS, base), items)
        rels = [os.path.relpath(cf.path, root) for cf, _t in items if _under(cf.path, root)]
        tracked = _listed(index.git("ls-files", "-z", "--", *rels)) if rels else set()
        index.add([rel for rel, (cf, t) in zip(rels, [i for i in items if _under(i[0].path, root)])
                   if t is not None and (rel in tracked or os.path.lexists(cf.path))])
        in_base = _listed(index.git("ls-tree", "-r", "-z", "--name-only", base, "--", *rels)) if rels else set()
        for rel in rels:
            out = index.git("diff", "--cached", *_DIFF_OPTS, base, "--", rel)
            if out is not None:
                diffs[rel] = out.decode("utf-8", "replace")
    return in_base


def _until_diffs(changes: Changes, root: str, base: str, items: list, diffs: dict[str, str], owns_tree: bool) -> set[str]:
    """Diffs between two snapshots: the job's start and the start of the follow-up after it."""
    until = changes.until
    if owns_tree:
        _found_in_worktree(root, _git(root, "diff", "--name-only", "-z", *_DIFF_OPTS, base, until), items)
    rels = [os.path.relpath(cf.path, root) for cf, _t in items if _under(cf.path, root)]
    for rel in rels:
        out = _git(root, "diff", *_DIFF_OPTS, base, until, "--", rel)
        if out is not None:
            diffs[rel] = out.decode("utf-8", "replace")
    changes.until_files = _listed(_git(root, "ls-tree", "-r", "-z", "--name-only", until, "--", *rels)) if rels else set()
    return _listed(_git(root, "ls-tree", "-r", "-z", "--name-only", base, "--", *rels)) if rels else set()


def _add_notes(changes: Changes, session: SessionChanges, owns_tree: bool) -> None:
    if session.failed_patches:
        changes.notes.append(f"{_count(session.failed_patches, 'patch')} failed partway: "
                             "the files it touched are shown as they are now")
    if session.refused_patches:
        changes.notes.append(f"{_count(session.refused_patches, 'patch')} did not apply (Codex refused it): "
                             "it changed nothing")
    if session.declined_patches:
        changes.notes.append(f"{_count(session.declined_patches, 'patch')} declined: it changed nothing")
    if session.commands and not owns_tree:
        changes.notes.append(f"the job also ran {_count(session.commands, 'command')}: "
                             "files changed by commands are not listed (see its logs)")


def _pick_base(changes: Changes, root: str, session: SessionChanges, recorded: str | None, owns_tree: bool) -> str:
    """What the files are compared with, best first, said in `changes.base_label`."""
    if owns_tree and session.git_commit and _exists(root, session.git_commit):
        base = session.git_commit
        changes.base_label = f"the commit its worktree was made from ({base[:12]})"
    elif recorded and _exists(root, recorded):
        base = recorded
        changes.base_label = f"the work tree as it was when the job started (snapshot {base[:12]})"
    else:
        if recorded:
            changes.notes.append("the snapshot taken when the job started is gone: compared with the last commit instead")
        head = _head(root)
        if head:
            base = head
            changes.base_label = f"the last commit (HEAD {head[:12]}), not the state before the job: new untracked files whole"
        else:
            base = _empty_tree(root)
            changes.base_label = "nothing: the repository has no commit yet"
    changes.base = base
    return base


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}es" if noun.endswith(("ch", "sh", "s")) else f"{n} {noun}s"


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _empty_tree(root: str) -> str:
    out = _git(root, "hash-object", "-t", "tree", os.devnull)
    return out.decode().strip() if out else _EMPTY_TREE_SHA1


# ---- for a job ------------------------------------------------------------------------------


def turn_bounds(job):
    """Where the job's own turn lies in its session file: from its `turn_offset` (0 for the
    job that started the session) to where the next follow-up's turn begins (None: the end),
    and that follow-up (None when there is none)."""
    from codexdash.store import Job

    start = job.turn_offset or 0
    nxt = None
    if job.session_id:
        nxt = (Job.select()
               .where((Job.session_id == job.session_id) & (Job.turn_offset.is_null(False)) & (Job.turn_offset > start))
               .order_by(Job.turn_offset).limit(1).first())
    return start, (nxt.turn_offset if nxt else None), nxt


def wants_worktree(job) -> bool:
    """Whether the job was started with Codex's `--worktree` (a follow-up runs in its parent's)."""
    argv = job.argv_list
    return "--worktree" in argv[: argv.index("--")] if "--" in argv else "--worktree" in argv


def job_changes(engine, job) -> Changes:
    """What `job` changed, from its own turn of its session. Raises Refused when the job has
    no session file to read."""
    from codexdash.errors import Refused

    path = engine.session_file(job)
    if path is None:
        raise Refused(f"job {job.id} has no session file: nothing records what it changed")
    worktree = engine.worktree(job)
    start, end, nxt = turn_bounds(job)
    try:
        session = session_changes(read_turn_lines(path, start, end), default_cwd=worktree or job.cwd)
    except OSError as exc:
        raise Refused(f"cannot read {path}: {exc.strerror}") from None
    except Exception as exc:  # noqa: BLE001 - a compressed file without zstandard, a corrupt one
        raise Refused(f"cannot read {path}: {exc}") from None
    owns = bool(worktree) and wants_worktree(job)
    until = (nxt.git_base, nxt.id) if nxt is not None and nxt.git_base else None
    return compute_changes(job.id, session, job.cwd, worktree=worktree, recorded_base=job.git_base, owns_tree=owns,
                           until=until)
