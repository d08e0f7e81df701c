"""Other boxes' rows without a network: a box's JSON read as untrusted rows, the backoff, the
status line's jobs per box, the changes read back from JSON, and (a stand-in `ssh`) a job's end
there told here by the box's watch, a slow box greyed while this box's rows go on, and a box
too old to watch asked at each look."""

from __future__ import annotations

import json
import os

import pytest

from codexdash.changes import ChangedFile, Changes
from codexdash.ui.box_polls import BACKOFF_MAX, backoff
from codexdash.ui.columns import BY_KEY, STALL_SECONDS, Row
from codexdash.ui.status_line import Facts, status_text
from codexdash.views import RemoteExternalView, RemoteView, remote_view
from tests.conftest import wait_for
from tests.ui_support import until


def test_a_box_json_is_read_as_untrusted_rows():
    v = remote_view({"id": "a1", "status": "running", "pid": 7, "created_at": "2026-01-01T00:00:00.000Z",
                     "cpu_percent": 12.5, "rss_bytes": 2048, "prompt": "hi [bold]x[/] \x1b[31m", "tokens": 40}, "box1")
    assert isinstance(v, RemoteView) and v.host == "box1" and v.job.pid == 7 and v.stats.cpu_percent == 12.5
    assert v.job.created_at == 1767225600.0 and v.elapsed > 0 and v.total_tokens == 40 and v.stale is None
    cell = BY_KEY["prompt"].cell(Row(v, now=0), 40)
    assert "\x1b" not in cell.plain and "[bold]" in cell.plain  # inert: never markup, never an escape
    odd = remote_view({"id": 5, "status": None, "pid": "9", "created_at": "yesterday", "tokens": True, "external": True}, "b")
    assert isinstance(odd, RemoteExternalView) and odd.job.id == "?" and odd.job.pid is None and odd.job.created_at == 0
    assert odd.total_tokens is None and odd.job.status == "lost"


def test_backoff_doubles_up_to_a_minute():
    assert [backoff(n) for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60] and backoff(50) == BACKOFF_MAX


def test_a_greyed_row_says_unreachable():
    v = remote_view({"id": "a1", "status": "completed", "created_at": "2026-01-01T00:00:00.000Z"}, "box1")
    v.stale = "unreachable: connection refused"
    row = Row(v, now=0)
    assert BY_KEY["state"].cell(row, 13).plain == "? unreachable" and BY_KEY["host"].cell(row, 8).plain == "box1"
    assert any("dim" in str(s.style) for s in BY_KEY["name"].cell(row, 20).spans)
    assert row.settled != Row(remote_view({"id": "a1", "status": "completed"}, "box1"), now=0).settled


def test_the_status_line_counts_jobs_per_box_and_says_which_does_not_answer():
    facts = Facts(host="laptop", title="codexdash", codex_home="/h", statuses=["running"] * 3, tokens={}, attention={},
                  boxes=(("local", 1, None, ""), ("box1", 2, None, "last seen 10:00:00"),
                         ("gpu-2", 0, "unreachable: no route to host", "last seen 09:58:00")))
    wide = status_text(facts, 200).plain
    assert "local 1 box1 2 gpu-2 ✖ unreachable: no route to host · last seen 09:58:00" in wide
    narrow = status_text(facts, 60).plain
    assert "gpu-2 ✖" in narrow and "no route" not in narrow  # the reason goes first; the box stays named
    # The counts go before the reason, but come back once the reason's going made room for them.
    middle = status_text(facts, 72).plain
    assert "local 1 box1 2 gpu-2 ✖" in middle and "no route" not in middle, middle
    assert "box1" not in status_text(Facts(host="h", title="codexdash", codex_home="/h", statuses=[], tokens={},
                                           attention={}, boxes=(("local", 0, None, ""),)), 200).plain


def test_changes_read_back_from_a_box_json():
    changes = Changes(job_id="j1", cwd="/w", git_root="/w", commands=2, notes=["a note"], files=[
        ChangedFile(path="/w/a.py", display="a.py", action="update", diff="@@ -1 +1 @@\n-x\n+y\n", insertions=1,
                    deletions=1, exists=True, diff_source="git")])
    again = Changes.from_json(json.loads(json.dumps(changes.as_json())))
    assert again.as_json() == changes.as_json() and again.lines() == changes.lines()
    odd = Changes.from_json({"id": "j", "files": [{"path": 1}, {"path": "/p", "display": "p", "action": "add",
                                                               "insertions": "many", "binary": 1}], "notes": [3, "n"]})
    assert [f.display for f in odd.files] == ["p"] and odd.files[0].insertions == 0 and odd.notes == ["n"]


# ---- a slow box, through a stand-in ssh --------------------------------------------------------------


async def test_a_slow_box_is_greyed_after_its_connect_timeout_and_the_rest_goes_on(sandbox, tmp_path, runtime_dir):
    from codexdash.ui.app import CodexdashApp

    answer = tmp_path / "answer.json"
    answer.write_text(json.dumps([{"id": "abcdef0123", "status": "running", "pid": 4242, "prompt": "remote work",
                                   "created_at": "2026-01-01T00:00:00.000Z"}]))
    slow = tmp_path / "slow"
    ssh = tmp_path / "fake-ssh"
    # `-G`: the operator's configuration sets a 1 s connect timeout; then the box's watch says its
    # jobs every 0.1 s (a look, at once), until the box turns slow: it says nothing for a long while.
    ssh.write_text(f'#!/bin/sh\nfor a; do [ "$a" = -G ] && {{ echo "connecttimeout 1"; exit 0; }}; done\n'
                   f'[ -e {slow} ] && exec sleep 30\n'
                   f'case "$*" in *--watch*) while [ ! -e {slow} ]; do printf \'{{"jobs": %s}}\\n\' "$(cat {answer})"; '
                   f'sleep 0.1; done; exec sleep 30;; esac\n'
                   f'cat {answer}\n')
    ssh.chmod(0o755)
    sandbox.engine.settings = sandbox.settings.with_overrides(refresh_interval=0.2, hosts=("slowbox",), ssh_command=(str(ssh),))
    app = CodexdashApp(sandbox.engine, cwd=str(sandbox.root), host="testhost", state_path=tmp_path / "state.json")
    async with app.run_test(size=(140, 30), notifications=True) as pilot:
        rows = lambda: {r.job.id: r for r in app.table.rows_for(app.shown_views())}  # noqa: E731
        await until(pilot, lambda: "abcdef0123" in rows(), message="the box's row")
        assert rows()["abcdef0123"].view.host == "slowbox" and not rows()["abcdef0123"].stale
        answer.write_text(answer.read_text().replace('"running"', '"completed"'))  # it ends there: news here
        app.look_again("slowbox")
        await until(pilot, lambda: "abcdef0123" in app.attention.unseen, message="the end of a job on the box, marked")
        await until(pilot, lambda: any("job abcdef0123 on slowbox completed" in n.message for n in app._notifications),
                    message="the end told")
        slow.touch()
        app.look_again("slowbox")
        await until(pilot, lambda: rows()["abcdef0123"].stale, timeout=10, message="the row greyed while the box is silent")
        stale = rows()["abcdef0123"].stale
        assert stale.startswith("no answer for"), stale
        job = sandbox.start("SLEEP 30")  # this box's rows go on meanwhile
        await until(pilot, lambda: job.id in rows(), message="a local row while the box is slow")
        assert "slowbox ✖" in str(app.status_line.render())


async def test_a_box_too_old_to_watch_is_asked_at_each_look(sandbox, tmp_path, runtime_dir):
    from codexdash.ui.app import CodexdashApp

    answer = tmp_path / "answer.json"
    answer.write_text(json.dumps([{"id": "abcdef0123", "status": "running", "pid": 4242, "prompt": "remote work",
                                   "created_at": "2026-01-01T00:00:00.000Z"}]))
    asked = tmp_path / "asked"
    ssh = tmp_path / "fake-ssh"
    # A box of protocol 1: the watch (protocol 2) refused as such a codexdash refuses it; each
    # `list --json` answered, and counted.
    ssh.write_text('#!/bin/sh\nfor a; do [ "$a" = -G ] && { echo "connecttimeout 1"; exit 0; }; done\n'
                   'case "$*" in *--protocol=2*) echo "codexdash: protocol mismatch: asked for protocol 2; codexdash 0.9 '
                   'here speaks 1 (upgrade codexdash on this box)" >&2; exit 2;; esac\n'
                   f'echo >> {asked}\ncat {answer}\n')
    ssh.chmod(0o755)
    sandbox.engine.settings = sandbox.settings.with_overrides(refresh_interval=0.2, hosts=("oldbox",), ssh_command=(str(ssh),))
    app = CodexdashApp(sandbox.engine, cwd=str(sandbox.root), host="testhost", state_path=tmp_path / "state.json")
    async with app.run_test(size=(140, 30)) as pilot:
        rows = lambda: {r.job.id: r for r in app.table.rows_for(app.shown_views())}  # noqa: E731
        await until(pilot, lambda: "abcdef0123" in rows(), message="the old box's row")
        assert app.looks["oldbox"].poll_until > 0 and not rows()["abcdef0123"].stale
        answer.write_text(answer.read_text().replace('"running"', '"completed"'))
        await until(pilot, lambda: rows()["abcdef0123"].job.status == "completed", message="its end, at a later look")
        assert len(asked.read_text().splitlines()) >= 2  # one `list` per look


def test_the_host_column_is_offered_once_when_boxes_are_configured(tmp_path):
    from codexdash.ui import saved_state

    state = saved_state.SavedState()
    assert "host" not in state.columns  # hidden by default: one box, no Host column
    state.offer_host_column()
    assert state.columns[:2] == ["state", "host"] and state.host_offered
    state.columns.remove("host")  # the operator hides it: it stays hidden
    path = tmp_path / "dashboard.json"
    saved_state.save(path, state)
    again = saved_state.load(path)
    again.offer_host_column()
    assert "host" not in again.columns


def test_a_live_job_on_another_box_has_its_idle_and_is_told_stalled(sandbox):
    job = sandbox.start("please SLEEP 30")
    path = wait_for(lambda: next(v.job.session_file for v in sandbox.engine.refresh() if v.job.id == job.id),
                    message="the job's session file")

    def told():  # the job's JSON both ways, while its file did not change meanwhile
        changed = os.stat(path).st_mtime
        by_cli = next(r for r in json.loads(sandbox.cli("list", "--json").stdout) if r["id"] == job.id)
        by_engine = next(v.as_json() for v in sandbox.engine.refresh() if v.job.id == job.id)
        return (changed, by_cli, by_engine) if os.stat(path).st_mtime == changed else None

    changed, by_cli, by_engine = wait_for(told, message="the job's file to keep still")
    for data in (by_cli, by_engine):  # what a box's `list --json` and its watch say
        v = remote_view(data, "box1")
        assert v.last_activity == pytest.approx(changed, abs=0.001)
        assert BY_KEY["idle"].cell(Row(v, now=changed + 42), 6).plain == "42s"
        assert Row(v, now=changed + STALL_SECONDS + 1).stalled
    finished = remote_view({**by_cli, "status": "completed"}, "box1")
    assert finished.last_activity is None and BY_KEY["idle"].cell(Row(finished, now=changed), 6).plain == "-"
