"""Snapshots of the session pane over finished sessions: a job and its follow-up sharing one
file, a failed job's error, a search. At 140×40 (pane beside the table) and 80×24 (below it).

Regenerate after an intended change of the look: `pytest tests/test_pane_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from codexdash.store import Job
from codexdash.ui.app import CodexdashApp
from tests.pane_support import record_thread
from tests.ui_support import add_fixed_jobs, log_text

ERROR = "stream disconnected before completion: error sending request for url (https://api.openai.com/v1/responses)"


@pytest.fixture
def thread_app(sandbox):
    sandbox.engine.settings = sandbox.settings.with_overrides(codex_home=Path("/home/operator/.codex"), refresh_interval=60)
    add_fixed_jobs(sandbox.engine.store)
    record_thread(sandbox.engine.store, age=300)
    with sandbox.engine.store.write():
        Job.update(error=ERROR).where(Job.id == "c3d4e5f6a7").execute()
    return CodexdashApp(sandbox.engine, cwd="/home/operator/project", host="buildbox")


async def select(pilot, job_id: str, text: str) -> None:
    app = pilot.app
    while app.table.row_count < 7:
        await pilot.pause(0.05)
    while app.table.selected_job_id != job_id:
        await pilot.press("down")
    while text not in log_text(app):
        await pilot.pause(0.05)
    await pilot.pause(0.1)


@pytest.mark.parametrize("size", [(140, 40), (80, 24)], ids=["140x40", "80x24"])
def test_a_follow_up_and_its_parent_in_one_pane(thread_app, snap_compare, size):
    async def run(pilot):
        await select(pilot, "a9b8c7d6e5", "› say hi again")

    assert snap_compare(thread_app, terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", [(140, 40), (80, 24)], ids=["140x40", "80x24"])
def test_a_failed_job_with_its_error(thread_app, snap_compare, size):
    async def run(pilot):
        await select(pilot, "c3d4e5f6a7", "Connection failed")

    assert snap_compare(thread_app, terminal_size=size, run_before=run)


def test_a_search_in_the_pane(thread_app, snap_compare):
    async def run(pilot):
        await select(pilot, "a9b8c7d6e5", "› say hi again")
        await pilot.press("tab", "slash", *"hi from", "enter", "escape", "n")
        await pilot.pause(0.1)

    assert snap_compare(thread_app, terminal_size=(140, 40), run_before=run)
