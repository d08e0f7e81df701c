"""What a job changed: the files its session says it edited, and their diffs.

Read from the job's own turn of its session file (a follow-up's turn starts at its
`turn_offset`; a job's turn ends where the next follow-up's begins): the files it edited as its
session records them (session_edits.py), the commands it ran counted. In a worktree that Codex
made for the job, everything that differs from the worktree's first commit is the job's, and is
listed.

Where the files are in a Git work tree, each is shown as `git diff` shows it against the state
when the job started: a snapshot of the work tree (a Git tree of its tracked and untracked,
not ignored, files, made in a scratch index when the job starts); for a worktree Codex made,
the commit it was made from; for older records, HEAD (the last commit, not the state before
the job; new untracked files are then shown whole). Elsewhere the diffs are those the session
recorded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from codexdash.git_tree import (
    DIFF_OPTS,
    ScratchIndex,
    empty_tree,
    git,
    has_object,
    head_commit,
    listed_paths,
    work_tree_root,
)
from codexdash.render import Line, sanitize
from codexdash.session_edits import Action, SessionChanges, Status, TouchedFile, read_turn_lines, session_changes

# A diff longer than this is cut, with a note: the dashboard and the terminal stay usable.
MAX_DIFF_CHARS = 2_000_000
_LETTER = {Action.ADDED: "A", Action.UPDATED: "M", Action.DELETED: "D", Action.MOVED: "R", Action.TRANSIENT: "±"}
_LETTER_STYLE = {"A": "ok", "M": "command", "D": "error", "R": "agent", "±": "dim"}


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
        if until and has_object(root, until[0]):
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
    for rel in sorted(listed_paths(names)):
        path = os.path.normpath(os.path.join(root, rel))
        if path not in known:
            items.append((ChangedFile(path=path, display=rel, action="", source="worktree",
                                      note="changed in its worktree, by a command"), None))


def _worktree_diffs(root: str, base: str, items: list, diffs: dict[str, str], owns_tree: bool) -> set[str]:
    """Diffs of the files as they are now against `base`, staged in a scratch index so that
    untracked and deleted files are compared as well. Returns the paths `base` holds."""
    with ScratchIndex(root) as index:
        if owns_tree:  # everything in the job's own worktree is the job's (ignored files aside)
            index.git("add", "-A", "--", ".")
            _found_in_worktree(root, index.git("diff", "--cached", "--name-only", "-z", *DIFF_OPTS, base), items)
        rels = [os.path.relpath(cf.path, root) for cf, _t in items if _under(cf.path, root)]
        tracked = listed_paths(index.git("ls-files", "-z", "--", *rels)) if rels else set()
        index.add([rel for rel, (cf, t) in zip(rels, [i for i in items if _under(i[0].path, root)])
                   if t is not None and (rel in tracked or os.path.lexists(cf.path))])
        in_base = listed_paths(index.git("ls-tree", "-r", "-z", "--name-only", base, "--", *rels)) if rels else set()
        for rel in rels:
            out = index.git("diff", "--cached", *DIFF_OPTS, base, "--", rel)
            if out is not None:
                diffs[rel] = out.decode("utf-8", "replace")
    return in_base


def _until_diffs(changes: Changes, root: str, base: str, items: list, diffs: dict[str, str], owns_tree: bool) -> set[str]:
    """Diffs between two snapshots: the job's start and the start of the follow-up after it."""
    until = changes.until
    if owns_tree:
        _found_in_worktree(root, git(root, "diff", "--name-only", "-z", *DIFF_OPTS, base, until), items)
    rels = [os.path.relpath(cf.path, root) for cf, _t in items if _under(cf.path, root)]
    for rel in rels:
        out = git(root, "diff", *DIFF_OPTS, base, until, "--", rel)
        if out is not None:
            diffs[rel] = out.decode("utf-8", "replace")
    changes.until_files = listed_paths(git(root, "ls-tree", "-r", "-z", "--name-only", until, "--", *rels)) if rels else set()
    return listed_paths(git(root, "ls-tree", "-r", "-z", "--name-only", base, "--", *rels)) if rels else set()


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
    if owns_tree and session.git_commit and has_object(root, session.git_commit):
        base = session.git_commit
        changes.base_label = f"the commit its worktree was made from ({base[:12]})"
    elif recorded and has_object(root, recorded):
        base = recorded
        changes.base_label = f"the work tree as it was when the job started (snapshot {base[:12]})"
    else:
        if recorded:
            changes.notes.append("the snapshot taken when the job started is gone: compared with the last commit instead")
        head = head_commit(root)
        if head:
            base = head
            changes.base_label = f"the last commit (HEAD {head[:12]}), not the state before the job: new untracked files whole"
        else:
            base = empty_tree(root)
            changes.base_label = "nothing: the repository has no commit yet"
    changes.base = base
    return base


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}es" if noun.endswith(("ch", "sh", "s")) else f"{n} {noun}s"


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


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
