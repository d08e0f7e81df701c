"""Follow-ups (`codex exec resume`) and retries: new jobs like any other, each judged by its own
turn of the shared session file."""

from __future__ import annotations

import json

import pytest

from codexdash.errors import Refused
from codexdash.kill import kill_job
from codexdash.store import Job, JobStatus
from tests.conftest import wait_for
from tests.test_cli import one_line_error


def finished(sandbox, job) -> Job:
    wait_for(lambda: sandbox.engine.refresh([job]) and not job.is_live, message=f"job {job.id} to end")
    return Job.get_by_id(job.id)


def _outcomes(path: str) -> list[str]:
    out = []
    for line in open(path):
        payload = json.loads(line).get("payload", {})
        if payload.get("type") in ("task_complete", "turn_aborted"):
            out.append(payload["type"])
    return out


@pytest.mark.parametrize("first,expected_parent", [
    ("ECHO first answer", JobStatus.COMPLETED),
    ("please FAIL", JobStatus.FAILED),
    ("please SLEEP 60", JobStatus.KILLED),
])
def test_a_follow_up_continues_the_session_and_is_judged_by_its_own_turn(sandbox, first, expected_parent):
    parent = sandbox.start(first, model="m-1", sandbox="read-only")
    if expected_parent == JobStatus.KILLED:
        wait_for(lambda: sandbox.engine.session_file(parent), message="the session file")
        kill_job(sandbox.engine, parent)
    parent = finished(sandbox, parent)
    assert parent.status == expected_parent
    follow = sandbox.engine.resume(parent, "ECHO second answer")
    follow = finished(sandbox, follow)
    assert follow.status == JobStatus.COMPLETED, follow.detail
    assert follow.parent_id == parent.id
    assert (follow.session_file, follow.session_id) == (parent.session_file, parent.session_id)
    assert (follow.cwd, follow.model, follow.sandbox) == (parent.cwd, "m-1", "read-only")
    assert follow.argv_list[-4:] == ["resume", parent.session_id, "--", "ECHO second answer"]
    assert _outcomes(follow.session_file)[-1] == "task_complete"  # appended to the same file
    assert Job.get_by_id(parent.id).status == expected_parent  # never rewritten by the follow-up


def test_a_failing_follow_up_fails_alone(sandbox):
    parent = finished(sandbox, sandbox.start("ECHO fine"))
    follow = finished(sandbox, sandbox.engine.resume(parent, "now FAIL"))
    assert follow.status == JobStatus.FAILED
    assert Job.get_by_id(parent.id).status == JobStatus.COMPLETED
    assert _outcomes(parent.session_file) == ["task_complete", "task_complete"]


def test_one_turn_at_a_time(sandbox):
    parent = sandbox.start("please SLEEP 60")
    with pytest.raises(Refused, match="one turn at a time"):
        sandbox.engine.resume(parent, "ECHO too soon")
    result = sandbox.cli("resume", parent.id, "ECHO too soon")
    one_line_error(result, 1, "one turn at a time")


def test_a_job_without_a_session_cannot_be_followed_up(sandbox):
    job_id = json.loads(sandbox.cli("start", "--json", "ECHO x", "--", "--bogus").stdout)["id"]
    wait_for(lambda: (j := Job.get_by_id(job_id)) and sandbox.engine.refresh([j]) and not j.is_live,
             message="the rejected job to end")
    result = sandbox.cli("resume", job_id, "ECHO again")
    one_line_error(result, 1, "has no Codex session to continue")


def test_resume_from_the_command_line(sandbox):
    parent = finished(sandbox, sandbox.start("ECHO one"))
    result = sandbox.cli("resume", "--json", "--name", "the second turn", parent.id, "ECHO two")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["parent_id"] == parent.id and data["session_id"] == parent.session_id
    assert data["name"] == "the second turn"
    follow = finished(sandbox, Job.get_by_id(data["id"]))
    assert follow.status == JobStatus.COMPLETED


def test_retry_runs_the_job_again_as_it_was(sandbox, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    first = json.loads(sandbox.cli("start", "--json", "--cwd", str(work), "--model", "m-2", "--sandbox", "read-only",
                                   "ECHO retried", "--", "-c", "x=1").stdout)
    result = sandbox.cli("retry", "--json", first["id"])
    assert result.returncode == 0, result.stderr
    again = Job.get_by_id(json.loads(result.stdout)["id"])
    original = Job.get_by_id(first["id"])
    assert again.retry_of == original.id and again.id != original.id
    assert (again.prompt, again.cwd, again.model, again.sandbox) == (original.prompt, str(work), "m-2", "read-only")
    assert again.extra_args_list == ["-c", "x=1"] and again.argv_list[-4:-2] == ["-c", "x=1"]
    assert again.marker != original.marker
    assert finished(sandbox, again).status == JobStatus.COMPLETED


def test_retry_of_a_follow_up_is_the_same_follow_up_again(sandbox):
    parent = finished(sandbox, sandbox.start("ECHO base"))
    follow = finished(sandbox, sandbox.engine.resume(parent, "now FAIL"))
    again = finished(sandbox, sandbox.engine.retry(follow))
    assert (again.parent_id, again.retry_of, again.prompt) == (parent.id, follow.id, "now FAIL")


def test_the_parents_outcome_never_decides_the_follow_up(sandbox):
    parent = finished(sandbox, sandbox.start("ECHO done well"))
    follow = finished(sandbox, sandbox.engine.resume(parent, "please CRASH"))  # exit 3, no final line
    assert follow.status == JobStatus.FAILED and follow.exit_code == 3
    assert Job.get_by_id(parent.id).status == JobStatus.COMPLETED
