"""Snapshots of the dashboard's screens over fixed jobs (ids, names, times, host and paths
fixed), at 80x24, 140x40 and 200x50, in colour and under NO_COLOR.

Regenerate after an intended change of the look: `pytest tests/test_ui_snapshots.py --snapshot-update`,
then look at every changed screen.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from codexdash.identity import Check, IdentityReport
from codexdash.kill import kill_plan
from codexdash.store import Job
from codexdash.ui import jobs_table, saved_state
from codexdash.ui.app import CodexdashApp
from codexdash.ui.kill_dialog import KillDialog
from tests.ui_support import add_fixed_jobs, log_text

# Today at 10:00 UTC: the fixed jobs started between 09:10 and 09:50 (today's, so listed as recent).
NOW = time.time() // 86400 * 86400 + 10 * 3600


class FrozenClock:
    @staticmethod
    def time() -> float:
        return NOW


@pytest.fixture(params=["colour", "no_color"])
def look(request, monkeypatch):
    if request.param == "no_color":
        monkeypatch.setenv("NO_COLOR", "1")
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
    return request.param


@pytest.fixture
def fixed_app(sandbox, monkeypatch, tmp_path):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.setattr(jobs_table, "time", FrozenClock)
    sandbox.engine.settings = sandbox.settings.with_overrides(codex_home=Path("/home/operator/.codex"), refresh_interval=60)
    add_fixed_jobs(sandbox.engine.store, now=NOW)
    state = tmp_path / "dashboard.json"
    # One job ended while nobody looked: marked, and counted in the status line.
    saved_state.save(state, saved_state.SavedState(unseen=["b2c3d4e5f6"]))
    yield CodexdashApp(sandbox.engine, cwd="/home/operator/project", host="buildbox", state_path=state)
    monkeypatch.undo()
    time.tzset()


async def settled(pilot) -> None:
    app = pilot.app
    while app.table.row_count < 5 or "completed: hi from mock" not in log_text(app):
        await pilot.pause(0.05)
    await pilot.pause(0.1)


@pytest.mark.parametrize("size", [(80, 24), (140, 40), (200, 50)], ids=["80x24", "140x40", "200x50"])
def test_main_screen(look, fixed_app, snap_compare, size):  # `look` first: NO_COLOR is read when the app is made
    assert snap_compare(fixed_app, terminal_size=size, run_before=settled)


def test_start_dialog(fixed_app, snap_compare):
    async def open_dialog(pilot):
        await settled(pilot)
        await pilot.press("n", *"fix the flaky test")
        await pilot.pause(0.1)

    assert snap_compare(fixed_app, terminal_size=(100, 30), run_before=open_dialog)


def test_start_dialog_80x24(fixed_app, snap_compare):
    async def open_dialog(pilot):
        await settled(pilot)
        await pilot.press("n", *"fix the flaky test in the retry loop", "tab", *"flaky retry")
        await pilot.pause(0.1)

    assert snap_compare(fixed_app, terminal_size=(80, 24), run_before=open_dialog)


def test_help_80x24(fixed_app, snap_compare):
    async def open_help(pilot):
        await settled(pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.1)

    assert snap_compare(fixed_app, terminal_size=(80, 24), run_before=open_help)


def test_zoomed_pane(fixed_app, snap_compare):
    async def zoom(pilot):
        await settled(pilot)
        await pilot.press("z")
        await pilot.pause(0.1)

    assert snap_compare(fixed_app, terminal_size=(80, 24), run_before=zoom)


def test_column_chooser(fixed_app, snap_compare):
    async def open_chooser(pilot):
        await settled(pilot)
        await pilot.press("C")
        await pilot.pause(0.1)

    assert snap_compare(fixed_app, terminal_size=(100, 30), run_before=open_chooser)


def _report(job: Job, ok: bool) -> IdentityReport:
    report = IdentityReport(job_id=job.id, pid=job.pid, cmdline=["node", "/usr/lib/node_modules/@openai/codex/bin/codex.js", "exec", "--", job.prompt])
    report.checks = [
        Check("process", True, f"PID {job.pid} is alive (sleeping)"),
        Check("start time", ok, "started as recorded" if ok else "started at another time: the PID was reused"),
        Check("marker", ok, "CODEXDASH_JOB in its environment and command line" if ok else "the job's marker is missing from its environment"),
        Check("command", True, "node running /usr/lib/node_modules/@openai/codex/bin/codex.js"),
        Check("user", True, "owned by uid 1000, as codexdash"),
    ]
    return report


@pytest.mark.parametrize("ok", [True, False], ids=["verified", "refused"])
def test_kill_dialog(fixed_app, snap_compare, ok):
    async def open_dialog(pilot):
        await settled(pilot)
        job = Job.get_by_id("a1b2c3d4e5")
        pilot.app.push_screen(KillDialog(job, _report(job, ok), kill_plan(pilot.app.engine, force=False)))
        await pilot.pause(0.1)

    assert snap_compare(fixed_app, terminal_size=(100, 30), run_before=open_dialog)
