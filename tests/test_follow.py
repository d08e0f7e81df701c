"""Following a session file with real files and real kernel events: appends, a file replaced by
a new inode, truncation, deletion, a move to archived_sessions/, the watchfiles path, and an idle
follower that is never woken."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from codexdash.follow import FOLLOW_ENV, Follower, Stop, Update
from codexdash.tail import session_from
from tests.conftest import wait_for

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kernel file events are Linux's")


class Running:
    """A follower iterated in its own thread, as the CLI and the pane do; updates collected."""

    def __init__(self, path, **kwargs) -> None:
        self.stop = Stop()
        self.follower = Follower(session_from(path), stop=self.stop, **kwargs)
        self.updates: list[Update] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for update in self.follower:
            self.updates.append(update)

    def lines(self) -> list[bytes]:
        return [line for u in list(self.updates) for line in u.lines]

    def wait_lines(self, *expected: bytes) -> None:
        wait_for(lambda: self.lines()[-len(expected):] == list(expected), message=f"lines {expected}")

    def wait_update(self, condition, message: str) -> Update:
        return wait_for(lambda: next((u for u in list(self.updates) if condition(u)), None), message=message)

    def end(self) -> None:
        self.stop.set()
        self.thread.join(timeout=15)
        assert not self.thread.is_alive()


def append(path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


@pytest.fixture
def session_file(tmp_path):
    day = tmp_path / "sessions" / "2026" / "01" / "02"
    day.mkdir(parents=True)
    path = day / "rollout-2026-01-02T03-04-05-0199aaaa-bbbb-7ccc-8ddd-eeeeffff0000.jsonl"
    path.write_bytes(b"first\n")
    return path


@pytest.fixture
def running(session_file):
    started = []

    def start(**kwargs) -> Running:
        run = Running(session_file, **kwargs)
        started.append(run)
        run.wait_lines(b"first")
        return run

    yield start
    for run in started:
        run.stop.set()


def test_an_idle_follower_is_never_woken_and_the_first_line_after_the_quiet_is_delivered(running, session_file):
    run = running()
    assert run.follower.mode == "inotify"
    # The quiet spell: nothing written, so nothing may wake the follower (no clock, no polling).
    quiet_until = time.monotonic() + 1.5
    wait_for(lambda: time.monotonic() >= quiet_until, message="the quiet spell")
    assert run.follower.wakeups == 0
    append(session_file, b"after the quiet\n")
    run.wait_lines(b"after the quiet")
    assert run.follower.wakeups >= 1
    run.end()


def test_a_line_written_in_pieces_comes_whole(running, session_file):
    run = running()
    append(session_file, b"half")
    append(session_file, b" and half\n")
    run.wait_lines(b"half and half")
    assert b"half" not in run.lines()
    run.end()


def replace_with(path, data: bytes) -> None:
    """As Codex's thread store rewrites a live file: a new inode renamed over the name."""
    fresh = path.with_name("rollout.tmp")
    fresh.write_bytes(data)
    before = os.stat(path).st_ino
    os.replace(fresh, path)
    assert os.stat(path).st_ino != before


def test_a_file_replaced_by_one_that_begins_as_it_did_is_followed_on_from_where_it_was(running, session_file):
    run = running()
    replace_with(session_file, b"first\nsecond\n")
    run.wait_lines(b"second")
    append(session_file, b"third\n")  # written to the new inode: the follower watches that one now
    run.wait_lines(b"second", b"third")
    assert run.lines() == [b"first", b"second", b"third"] and not any(u.reset for u in list(run.updates))
    run.end()


def test_a_file_replaced_by_a_different_one_is_read_from_its_start(running, session_file):
    run = running()
    replace_with(session_file, b"other\nsecond\n")  # as long, and longer: but not what was read
    replaced = run.wait_update(lambda u: u.reset, "the replacement")
    assert replaced.lines == [b"other", b"second"] and not replaced.ended
    append(session_file, b"third\n")
    run.wait_lines(b"third")
    run.end()


@pytest.mark.parametrize("kernel_events", [True, False])
def test_a_long_file_replaced_is_told_apart_by_its_start_and_the_end_of_what_was_read(session_file, kernel_events):
    """Past MATCH_BYTES at both ends: a replacement that repeats what was read, a line left half
    written completed in it, goes on; one whose start or last lines read differ is read again."""
    from codexdash.tail import MATCH_BYTES

    lines = [b'{"n": %d, "pad": "%s"}' % (i, b"x" * 100) for i in range(200)]
    body = b"\n".join(lines) + b"\n"
    assert len(body) > 4 * MATCH_BYTES
    session_file.write_bytes(body + b'{"n": "half')
    run = Running(session_file, kernel_events=kernel_events)
    run.wait_lines(lines[-1])
    replace_with(session_file, body + b'{"n": "half", "done": 1}\n{"n": "next"}\n')
    run.wait_lines(b'{"n": "half", "done": 1}', b'{"n": "next"}')
    assert not any(u.reset for u in list(run.updates)) and len(run.lines()) == 202
    read = body + b'{"n": "half", "done": 1}\n{"n": "next"}\n'
    other_start = b"X" + read[1:]
    for changed in (other_start, other_start[:-10] + b'"NEXT"}\n' + b"more\n"):  # its start, then its last lines
        seen = len(run.updates)
        replace_with(session_file, changed)
        replaced = run.wait_update(lambda u: u.reset and run.updates.index(u) >= seen, "the replacement read again")
        assert b"".join(line + b"\n" for line in replaced.lines) == changed
    run.end()


def test_truncation_restarts_from_the_start(running, session_file):
    run = running()
    append(session_file, b"second\n")
    run.wait_lines(b"second")
    with open(session_file, "r+b") as fh:
        fh.truncate(0)
    run.wait_update(lambda u: u.reset, "the truncation")
    append(session_file, b"anew\n")
    run.wait_lines(b"anew")
    run.end()


def test_deletion_is_said_once_and_the_follower_waits_for_the_file_to_come_back(running, session_file):
    run = running()
    session_file.unlink()
    gone = run.wait_update(lambda u: u.problem, "the deletion")
    assert "no longer exists" in gone.problem and not gone.ended
    session_file.write_bytes(b"back\n")  # created, then written: the follower may see the two apart
    back = run.wait_update(lambda u: u.reset, "the file again, read from its start")
    after = lambda: [line for u in run.updates[run.updates.index(back):] for line in u.lines]  # noqa: E731
    wait_for(lambda: after() == [b"back"], message="its line")
    assert run.thread.is_alive()
    assert sum(1 for u in run.updates if u.problem) == 1
    run.end()


def test_a_file_moved_to_archived_sessions_is_said_to_have_moved_and_following_ends(running, session_file, tmp_path):
    run = running()
    archived = tmp_path / "archived_sessions"
    archived.mkdir()
    append(session_file, b"last words\n")
    dest = archived / session_file.name
    os.rename(session_file, dest)
    moved = run.wait_update(lambda u: u.ended, "the move")
    assert moved.moved_to == str(dest) and str(dest) in moved.problem
    assert run.lines()[-1] == b"last words"  # nothing written before the move is lost
    wait_for(lambda: not run.thread.is_alive(), message="the follower to end")


def test_stop_wakes_a_waiting_follower_at_once(running):
    run = running()
    run.stop.set()
    wait_for(lambda: not run.thread.is_alive(), message="the follower to stop")
    assert run.follower.wakeups == 1  # woken by the stop, nothing else


def test_a_timeout_hands_control_back_when_nothing_happens(running):
    run = running(timeout=0.05)
    wait_for(lambda: sum(1 for u in list(run.updates) if u.empty) >= 2, message="two empty updates")
    run.end()


def test_the_watchfiles_path_when_inotify_is_forced_off(running, session_file, monkeypatch):
    monkeypatch.setenv(FOLLOW_ENV, "watchfiles")
    run = running()
    assert run.follower.mode == "watchfiles"
    append(session_file, b"second\n")
    run.wait_lines(b"second")
    replace_with(session_file, b"first\nsecond\nthird\n")  # begins as it did: read on
    run.wait_lines(b"third")
    replace_with(session_file, b"replaced\n")
    assert run.wait_update(lambda u: u.reset, "the replacement").lines == [b"replaced"]
    session_file.unlink()
    assert "no longer exists" in run.wait_update(lambda u: u.problem, "the deletion").problem
    run.end()


def test_the_kernel_path_can_be_refused_by_parameter(running):
    run = running(kernel_events=False)
    assert run.follower.mode == "watchfiles" and run.follower.fallback_reason is None
    run.end()


def test_poll_reads_only_when_the_file_changed(session_file):
    follower = Follower(session_from(session_file))
    assert follower.poll().lines == [b"first"]
    assert follower.poll() is None
    append(session_file, b"second\n")
    assert follower.poll().lines == [b"second"]
    session_file.unlink()
    assert "no longer exists" in follower.poll().problem
    assert follower.poll() is None  # said once


def test_a_folder_moved_away_takes_the_file_with_it(running, session_file, tmp_path):
    run = running()
    elsewhere = tmp_path / "elsewhere"
    session_file.parent.rename(elsewhere)
    moved = run.wait_update(lambda u: u.ended, "the move")
    assert moved.moved_to == str(elsewhere / session_file.name)
    wait_for(lambda: not run.thread.is_alive(), message="the follower to end")


def test_inotify_limits_reached_fall_back_to_watchfiles(running, session_file, monkeypatch):
    import errno

    import inotify_simple

    def exhausted(*_args, **_kwargs):
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))  # as inotify_init1 at max_user_instances

    monkeypatch.setattr(inotify_simple, "INotify", exhausted)
    run = running()
    assert run.follower.mode == "watchfiles" and "inotify unavailable" in run.follower.fallback_reason
    append(session_file, b"second\n")
    run.wait_lines(b"second")
    run.end()
