"""Snapshots of the dashboard's screens over fixed jobs (ids, durations, host and paths fixed).

Regenerate after an intended change of the look: `pytest tests/test_ui_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from codexdash.identity import Check, IdentityReport
from codexdash.kill import kill_plan
from codexdash.store import Job
from codexdash.ui.app import CodexdashApp
from codexdash.ui.kill_dialog import KillDialog
from tests.ui_support import add_fixed_jobs, log_text


@pytest.fixture
def fixed_app(sandbox):
    sandbox.engine.settings = sandbox.settings.with_overrides(codex_home=Path("/home/operator/.codex"), refresh_interval=60)
    add_fixed_jobs(sandbox.engine.store)
    return CodexdashApp(sandbox.engine, cwd="/home/operator/project", host="buildbox")


async def settled(pilot) -> None:
    app = pilot.app
    while app.table.row_count < 5 or "completed: hi from mock" not in log_text(app):
        await pilot.pause(0.05)
    await pilot.pause(0.1)


def test_main_screen(fixed_app, snap_compare):
    assert snap_compare(fixed_app, terminal_size=(140, 34), run_before=settled)


def test_narrow_layout_80x24(fixed_app, snap_compare):
    assert snap_compare(fixed_app, terminal_size=(80, 24), run_before=settled)


def test_start_dialog(fixed_app, snap_compare):
    async def open_dialog(pilot):
        await settled(pilot)
        await pilot.press("n", *"fix the flaky test")
        await pilot.pause(0.1)

    assert snap_compare(fixed_app, terminal_size=(100, 30), run_before=open_dialog)


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
