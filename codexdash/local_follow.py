"""A session on this box as rendered lines: what `codexdash logs` prints, and what this box
answers when another codexdash follows one of its sessions over ssh (boxes.Box.follow).

A module of its own, loading only what reading a session needs: `logs FILE` opens no store and
loads neither the box interface (typing, subprocess) nor dataclasses, so the command costs little
more than the interpreter's start and the read.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

from codexdash.errors import BadInput, Refused
from codexdash.plain import FrozenFields
from codexdash.render import Line


class FollowEnd(FrozenFields):
    """The last item of a follow: the session is over (or was read once, not followed)."""

    __slots__ = ("status",)
    FIELDS = __slots__

    def __init__(self, status: str | None) -> None:
        # The job's status then; None when a session file was read, not a job.
        object.__setattr__(self, "status", status)


class LocalFollower:
    """A job's session (a job of codexdash's, a Codex session started elsewhere, or a session
    file) on this box as rendered lines, then a FollowEnd: what `logs` prints, here or for
    another codexdash over ssh.

    Woken by the file's changes only (the core's follower); a followed job is also looked at
    once a second, and the follow ends with it. An error reading the file is one Refused line;
    errors writing what it yields are the consumer's."""

    WAIT_FOR_FILE = 0.2  # Codex creates its file a moment after it starts
    LOOK_EVERY = 1.0

    def __init__(self, engine, target: str, raw: bool, tail: int | None, follow: bool) -> None:
        from codexdash.follow import Stop

        if tail is not None and tail < 0:
            raise BadInput("--tail takes a number of events, 0 or more")
        self.engine, self.raw, self.tail, self.follow = engine, raw, tail, follow
        self._stop = Stop()
        self.job = None
        self.path = self._resolve(target)

    def _resolve(self, target: str) -> Path:
        path = Path(target).expanduser()
        if path.is_file():
            return path
        if os.sep in target or target.endswith((".jsonl", ".jsonl.zst")):
            raise BadInput(f"no session file {target}")
        from codexdash.render import undecodable

        if (shown := undecodable(target)) is not None:  # not a job id: a file name that is not there
            raise BadInput(f"no session file {shown}")
        job, session = self.engine.find_job_or_session(target)
        if session is not None:  # a session started elsewhere
            return Path(session.session_file)
        self.job = job
        found = self.engine.session_file(job)
        while found is None and self.follow and job.is_live and not self._stop.is_set():
            self._stop.wait(self.WAIT_FOR_FILE)
            self.engine.reconcile(job)
            found = self.engine.session_file(job)
        if found is None:
            raise Refused(f"job {job.id} has no session file (yet)")
        return Path(found)

    def close(self) -> None:
        self._stop.set()

    def __iter__(self) -> Iterator[Line | FollowEnd]:
        try:
            yield from self._lines()
        except OSError as exc:
            raise Refused(f"cannot read {self.path}: {exc.strerror or exc}") from None

    def _lines(self) -> Iterator[Line | FollowEnd]:
        from codexdash.events import Event, Kind
        from codexdash.follow import Follower
        from codexdash.render import render_event, render_raw, render_tokens
        from codexdash.tail import is_compressed, open_session, open_session_raw, session_from

        tokens: list[int] = []

        def rendered(events, raw_lines) -> Iterator[Line]:
            if self.raw:
                yield from (render_raw(line) for line in raw_lines)
                return
            for event in events:
                if event.tokens is not None:
                    tokens.append(event.tokens)
                yield from render_event(event)

        def notice(text: str) -> Iterator[Line]:
            if not self.raw:  # raw output stays the lines as written
                yield from render_event(Event(Kind.NOTICE, text))

        def end() -> Iterator[Line | FollowEnd]:
            if tokens and not self.raw:
                yield render_tokens(tokens[-1])
            yield FollowEnd(self.job.status if self.job is not None else None)

        if self.tail is not None and self.raw:
            session = open_session_raw(self.path, self.tail)
            events, lines, problem = [], session.lines, None
        elif self.tail is not None:
            session = open_session(self.path, last=self.tail)
            events, lines, problem = session.events, session.lines, None
        else:
            session = session_from(self.path)
            first = session.read_more()
            events, lines, problem = first.events, first.lines, first.problem
        if self.tail is not None and session.truncated:
            yield from notice("earlier events not shown")
        yield from rendered(events, lines)
        if problem:
            raise Refused(problem)
        if not self.follow:
            yield from end()
            return
        if is_compressed(self.path):
            # Codex compresses only a session left untouched for days: nothing more will come.
            yield from notice("the session file is compressed: Codex has finished with it")
            yield from end()
            return
        last_look = time.monotonic()
        follower = Follower(session, stop=self._stop, timeout=self.LOOK_EVERY if self.job is not None else None)
        for more in follower:
            if more.reset:
                yield from notice("the file was truncated or replaced: reading it again")
            yield from rendered(more.events, more.lines)
            if more.problem:
                yield from notice(more.problem)
            if more.ended:
                yield from end()
                return
            if self.job is not None and time.monotonic() - last_look >= self.LOOK_EVERY:
                last_look = time.monotonic()
                self.engine.reconcile(self.job)
                if not self.job.is_live:
                    last = follower.read()
                    yield from rendered(last.events, last.lines)
                    yield from end()
                    return
        yield from end()
