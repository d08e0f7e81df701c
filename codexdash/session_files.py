"""Finding a job's Codex session file under `$CODEX_HOME/sessions/YYYY/MM/DD/`.

While the job runs, its file is among the open files of a process that carries its marker.
Afterwards, it is matched by start time (from the file's name, in local time), cwd and first
prompt, read from the head of the file.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

from codexdash.events import Kind, SessionParser

_NAME = re.compile(
    r"^rollout-(\d{4})-(\d{2})-(\d{2})T(\d{2})-(\d{2})-(\d{2})-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.jsonl$"
)
# A session file is created just after Codex starts; allow for a slow start and clock rounding
# (names have whole seconds).
MATCH_BEFORE = 2.0
MATCH_AFTER = 120.0
HEAD_BYTES = 1 << 20
HEAD_LINES = 60


@dataclass(frozen=True)
class SessionName:
    started: float  # epoch seconds, from the local time in the name
    session_id: str


def parse_name(path: Path | str) -> SessionName | None:
    m = _NAME.match(os.path.basename(str(path)))
    if not m:
        return None
    y, mo, d, h, mi, s = (int(x) for x in m.groups()[:6])
    try:
        started = dt.datetime(y, mo, d, h, mi, s).timestamp()  # naive = local time, as Codex names it
    except ValueError:
        return None
    return SessionName(started=started, session_id=m.group(7))


def sessions_dir(codex_home: Path) -> Path:
    return Path(codex_home) / "sessions"


def _day_dirs(codex_home: Path, around: float) -> list[Path]:
    days = {dt.date.fromtimestamp(around + delta) for delta in (-86400, 0, MATCH_AFTER)}
    return [sessions_dir(codex_home) / f"{d:%Y}" / f"{d:%m}" / f"{d:%d}" for d in sorted(days)]


@dataclass
class SessionHead:
    session_id: str | None = None
    cwd: str | None = None
    prompt: str | None = None


def read_head(path: Path | str) -> SessionHead:
    """The session id, cwd and first prompt from the start of a session file."""
    head = SessionHead()
    parser = SessionParser()
    try:
        with open(path, "rb") as fh:
            budget = HEAD_BYTES * 8  # session_meta alone can be ~20 KB; tool output can be larger
            for _ in range(HEAD_LINES):
                line = fh.readline(HEAD_BYTES * 4)
                budget -= len(line)
                if not line or budget < 0:
                    break
                for event in parser.feed(line):
                    if event.kind == Kind.META:
                        head.session_id = head.session_id or event.data.get("session_id")
                        head.cwd = head.cwd or event.data.get("cwd")
                    elif event.kind == Kind.PROMPT:
                        head.prompt = event.text
                        return head
    except OSError:
        pass
    return head


def find_by_match(
    codex_home: Path, started_at: float, cwd: str, prompt: str, exclude: set[str] = frozenset()
) -> Path | None:
    """The session file that began just after `started_at` in `cwd` with this prompt."""
    candidates: list[tuple[float, Path]] = []
    for day in _day_dirs(codex_home, started_at):
        try:
            entries = list(os.scandir(day))
        except OSError:
            continue
        for entry in entries:
            name = parse_name(entry.name)
            if name is None or entry.path in exclude:
                continue
            delta = name.started - started_at
            if -MATCH_BEFORE <= delta <= MATCH_AFTER:
                candidates.append((abs(delta), Path(entry.path)))
    for _delta, path in sorted(candidates):
        head = read_head(path)
        if head.cwd is not None and os.path.realpath(head.cwd) != os.path.realpath(cwd):
            continue
        if head.prompt is not None and head.prompt.strip() == prompt.strip():
            return path
    return None


def iter_session_files(codex_home: Path):
    """Every session file, newest first by name (names sort by their local start time)."""
    root = sessions_dir(codex_home)
    found = []
    for dirpath, _dirs, files in os.walk(root, followlinks=False):
        for f in files:
            if _NAME.match(f):
                found.append(os.path.join(dirpath, f))
    found.sort(key=os.path.basename, reverse=True)
    return found
