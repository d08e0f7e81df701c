"""The rest of a job's life with the real Codex CLI, offline against the mock model server: a
retry, a session run by hand (external, read-only), the hook when a job ends with no dashboard
open, and a follow-up and its changes from the dashboard.

Each release, the program as an operator's PATH gives it (the npm wrapper): the program's shapes
are covered where they matter, by the identity and kill tests in test_real_codex.py.
"""

from __future__ import annotations

import json

import pytest
from textual.widgets import RichLog

from codexdash.store import Job, JobStatus
from codexdash.ui.app import CodexdashApp
from codexdash.ui.changes_screen import ChangesScreen
from codexdash.ui.start_dialog import StartDialog
from tests.conftest import wait_for
from tests.real_codex_support import mock_server, real_codex  # noqa: F401 (fixtures)
from tests.test_changes import make_repo
from tests.test_changes_real import FIRST, MODEL, SANDBOX
from tests.test_external import listed, run_codex_by_hand
from tests.test_notify import events, history, hook, start  # noqa: F401 (fixture)
from tests.test_real_codex import codex_box, finished  # noqa: F401 (fixture)
from tests.ui_support import table_text, until

# The program as an operator's PATH gives it, each release.
pytestmark = [pytest.mark.real_codex, pytest.mark.parametrize("codex_box", ["wrapper"], indirect=True)]

SECOND_PATCH = "PATCH two\n*** Begin Patch\n*** Update File: b.txt\n@@\n-bee\n+bee again\n*** End Patch\n"


def test_retry_runs_the_real_job_again_as_it_was(codex_box):  # noqa: F811
    box = codex_box
    first = finished(box, box.start("say hi", model="mock-model", sandbox="read-only"))
    assert first.status == JobStatus.COMPLETED, first.detail
    answer = box.cli("retry", "--json", first.id)
    assert answer.returncode == 0, answer.stderr
    again = json.loads(answer.stdout)
    assert again["retry_of"] == first.id and (again["prompt"], again["model"]) == ("say hi", "mock-model")
    done = finished(box, Job.get_by_id(again["id"]))
    assert done.status == JobStatus.COMPLETED and done.session_file != first.session_file


def test_a_real_session_run_by_hand_is_listed_read_only(codex_box):  # noqa: F811
    box = codex_box
    run_codex_by_hand(box, "typed by hand")
    row = wait_for(lambda: next((r for r in listed(box).values() if r["external"]), None), message="the session listed")
    assert row["status"] == "completed" and row["prompt"] == "typed by hand" and row["cwd"] == str(box.root)
    assert row["id"] == row["session_id"] and row["tokens"]
    refused = box.cli("kill", row["id"])
    assert refused.returncode == 1 and "not started by codexdash: no marker to verify" in refused.stderr
    logs = box.cli("logs", row["id"])
    assert logs.returncode == 0 and "› typed by hand" in logs.stdout


def test_the_hook_hears_once_of_a_real_job_with_no_dashboard_open(codex_box, hook):  # noqa: F811
    box = codex_box
    command, out = hook
    job = start(box, "say hi", CODEXDASH_NOTIFY_COMMAND=command)
    (event,) = wait_for(lambda: events(out, job["id"]), timeout=60, message="the finished event")
    assert event["event"] == "finished" and event["status"] == "completed"
    wait_for(lambda: history(job["id"], "notify"), message="the hook's run in the history")
    assert box.cli("list", "--json", CODEXDASH_NOTIFY_COMMAND=command).returncode == 0  # one more look
    assert len(events(out, job["id"])) == 1


async def test_a_follow_up_and_its_changes_from_the_dashboard(codex_box, tmp_path):  # noqa: F811
    box = codex_box
    repo = make_repo(tmp_path / "repo", {"a.txt": "old line\n", "b.txt": "bee\n"})
    parent = finished(box, box.start(FIRST, cwd=repo, model=MODEL, sandbox=SANDBOX))
    assert parent.status == JobStatus.COMPLETED, parent.detail
    app = CodexdashApp(box.engine, cwd=str(box.root), host="testhost")
    async with app.run_test(size=(140, 36)) as pilot:
        await until(pilot, lambda: app.table.selected_job_id == parent.id, message="the parent selected")
        await pilot.press("c")
        dialog = await until(pilot, lambda: isinstance(app.screen, StartDialog) and app.screen, message="the dialog")
        assert dialog.follow_up
        dialog.query_one("#prompt").load_text(SECOND_PATCH)
        await pilot.press("ctrl+s")
        follow = await until(pilot, lambda: Job.get_or_none(Job.parent_id == parent.id), message="the follow-up")
        await until(pilot, lambda: box.engine.refresh([Job.get_by_id(follow.id)])[0].job.status == JobStatus.COMPLETED,
                    timeout=60, message="the follow-up to complete")
        await until(pilot, lambda: app.table.selected_job_id == follow.id and "✔ completed" in table_text(app),
                    message="the follow-up shown")
        assert (repo / "b.txt").read_text() == "bee again\n"
        await pilot.press("d")
        screen = await until(pilot, lambda: isinstance(app.screen, ChangesScreen) and app.screen, message="Changes")
        def text() -> str:
            return "\n".join(line.text for line in screen.query_one(RichLog).lines)
        await until(pilot, lambda: "+bee again" in text(), message="the follow-up's diff")
        assert "b.txt" in text() and "new line" not in text()  # its own turn only
