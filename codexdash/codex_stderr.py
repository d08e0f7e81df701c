"""What each job's Codex prints on stderr, kept so a failure can say why in Codex's words.

Codex never writes argument errors, config errors or failed logins into its session files
(they are printed on stderr and it exits). This copy is codexdash's one deliberate exception
to "no log files of our own": one file per job beside the job database, owner-only, cut to its
last `KEEP_BYTES` when it grows past `MAX_BYTES` and when the job ends (the error is at the
end), and removed with the job's record.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

MAX_BYTES = 1 << 20
KEEP_BYTES = 64 << 10
# clap's `error: ...`, Codex's `Error: ...` / `Error loading config.toml:`, and log lines
# with an ERROR level.
_ERROR_LINE = re.compile(r"^(?:error\b|Error\b|ERROR\b|\S+\s+ERROR\b)")


def stderr_dir(db_path: Path) -> Path:
    return Path(db_path).with_name(Path(db_path).name + ".stderr")


def stderr_path(db_path: Path, job_id: str) -> Path:
    return stderr_dir(db_path) / f"{job_id}.log"


def open_for_job(db_path: Path, job_id: str) -> int:
    """A new owner-only file for the job's stderr, as a descriptor to hand to the child."""
    directory = stderr_dir(db_path)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return os.open(stderr_path(db_path, job_id), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)


def _tail(path: Path, size: int) -> bytes:
    with open(path, "rb") as fh:
        end = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, end - size))
        return fh.read(size)


def trim(path: Path) -> None:
    """Cuts the file to its last KEEP_BYTES (from a line start) once it passed MAX_BYTES.

    Codex appends with O_APPEND, so after the cut its next write lands at the new end."""
    try:
        if os.stat(path).st_size <= MAX_BYTES:
            return
        kept = _tail(path, KEEP_BYTES)
        kept = kept[kept.find(b"\n") + 1 :] if b"\n" in kept else kept
        os.truncate(path, 0)
        with open(path, "ab") as fh:  # appending, like Codex: neither write overwrites the other
            fh.write(kept)
    except OSError:
        pass


def last_error(path: Path) -> str | None:
    """Codex's last error line (with the line after it when the error line ends in ':')."""
    try:
        text = _tail(path, KEEP_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return None
    lines = [line.rstrip() for line in text.splitlines()]
    for i in range(len(lines) - 1, -1, -1):
        if _ERROR_LINE.match(lines[i]):
            line = lines[i]
            following = next((rest.strip() for rest in lines[i + 1 :] if rest.strip()), "")
            if line.endswith(":") and following:
                line = f"{line} {following}"
            return line[:500]
    return None


def remove(db_path: Path, job_id: str) -> None:
    try:
        os.unlink(stderr_path(db_path, job_id))
    except OSError:
        pass
