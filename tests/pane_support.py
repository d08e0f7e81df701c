"""Finished jobs over session files, for the session pane's tests and snapshots."""

from __future__ import annotations

import json
import time
from pathlib import Path

from codexdash.store import Job, JobStatus
from tests.conftest import SAMPLES

THREAD = SAMPLES / "0171-completed-then-resumed.jsonl"


def second_turn_offset(path: Path = THREAD) -> int:
    """Where the follow-up's turn begins in a resumed session: after the first task_complete."""
    offset = 0
    with open(path, "rb") as fh:
        for line in fh:
            offset += len(line)
            if b'"task_complete"' in line:
                return offset
    raise AssertionError(f"{path} has no task_complete")


def record_job(store, jid: str, path: Path | str | None, status: str = JobStatus.COMPLETED, age: float = 600,
               duration: float = 2.0, prompt: str = "say hi", **fields) -> Job:
    """A finished job (fixed id and duration) whose session is the file at `path`."""
    created = time.time() - age
    with store.write():
        return Job.create(
            id=jid, marker=f"cdx-{jid}", status=status, argv=json.dumps(["codex", "exec", "--", prompt]),
            cwd="/home/operator/project", prompt=prompt, created_at=created, pid=40000 + int(age),
            pid_start_time=created, started_at=created, ended_at=created + duration,
            exit_code=0 if status == JobStatus.COMPLETED else 1, session_file=str(path) if path else None,
            session_id=Path(path).name if path else None, **fields,
        )


def record_thread(store, age: float = 600) -> tuple[Job, Job]:
    """A job and its follow-up sharing the resumed session sample."""
    parent = record_job(store, "f1e2d3c4b5", THREAD, age=age + 60, name="say hi")
    follow = record_job(store, "a9b8c7d6e5", THREAD, age=age, prompt="say hi again", name="say hi again",
                        parent_id=parent.id, turn_offset=second_turn_offset())
    return parent, follow


def write_session(path: Path, lines: list[bytes | str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        for line in lines:
            fh.write((line.encode() if isinstance(line, str) else line).rstrip(b"\n") + b"\n")
    return path


def record(rtype: str, payload: dict, n: int = 0) -> str:
    return json.dumps({"timestamp": f"2026-11-28T14:58:{n:02d}.000Z", "ordinal": n, "type": rtype, "payload": payload})


def agent_message(text: str, n: int = 0) -> str:
    return record("response_item", {"type": "message", "role": "assistant",
                                    "content": [{"type": "output_text", "text": text}]}, n)


def user_message(text: str, n: int = 0) -> str:
    return record("response_item", {"type": "message", "role": "user",
                                    "content": [{"type": "input_text", "text": text}]}, n)
