"""A job's session file and outcome are its own on every real setup: siblings with the same
prompt, Codex refusing its arguments, archived and moved files, another CODEX_HOME, and what
Codex says on stderr when it fails."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import psutil
import pytest

from codexdash.session_files import archived_dir, find_by_match, read_head, thread_source_value
from codexdash.store import Job, JobStatus
from tests.conftest import wait_for
from tests.test_cli import one_line_error


def _cli_job(sandbox, *args: str) -> str:
    started = sandbox.cli("start", "--json", *args)
    assert started.returncode == 0, started.stderr
    return json.loads(started.stdout)["id"]


def _wait_gone(job_id: str) -> None:
    job = Job.get_by_id(job_id)
    wait_for(lambda: not psutil.pid_exists(job.pid) or psutil.Process(job.pid).status() == psutil.STATUS_ZOMBIE,
             message=f"the process of job {job_id} to exit")


def _listed(sandbox, **env) -> dict[str, dict]:
    result = sandbox.cli("list", "--all", "--json", **env)
    assert result.returncode == 0, result.stderr
    return {row["id"]: row for row in json.loads(result.stdout)}


def test_a_rejected_sibling_never_takes_the_other_jobs_file(sandbox):
    good = _cli_job(sandbox, "ECHO same")
    _wait_gone(good)
    bad = _cli_job(sandbox, "ECHO same", "--", "--bogus")  # Codex exits 2 before any file exists
    _wait_gone(bad)
    rows = _listed(sandbox)
    assert rows[good]["status"] == "completed"
    assert rows[good]["session_file"] and read_head(rows[good]["session_file"]).thread_source == thread_source_value(good)
    assert rows[bad]["status"] == "failed"
    assert rows[bad]["session_file"] is None
    assert rows[bad]["error"] == "error: unexpected argument '--bogus' found"
    assert rows[good]["error"] is None


def test_each_of_two_identical_jobs_gets_its_own_file(sandbox):
    a, b = _cli_job(sandbox, "ECHO twin"), _cli_job(sandbox, "ECHO twin")
    _wait_gone(a), _wait_gone(b)
    rows = _listed(sandbox)
    assert rows[a]["status"] == rows[b]["status"] == "completed"
    assert rows[a]["session_file"] != rows[b]["session_file"]
    for job_id in (a, b):
        assert read_head(rows[job_id]["session_file"]).thread_source == thread_source_value(job_id)


def test_resemblance_never_chooses_between_two_files(sandbox, tmp_path):
    """Records from before thread sources are matched by start time, cwd and prompt only when
    exactly one file fits."""
    job = sandbox.start("ECHO legacy")
    wait_for(lambda: sandbox.engine.refresh([job]) and not job.is_live, message="the job to end")
    first, rest = open(job.session_file).read().split("\n", 1)
    meta = json.loads(first)
    del meta["payload"]["thread_source"]  # as a release without thread sources wrote it
    with open(job.session_file, "w") as fh:
        fh.write(json.dumps(meta) + "\n" + rest)
    assert find_by_match(sandbox.codex_home, job.created_at, job.cwd, job.prompt) == Path(job.session_file)
    twin = job.session_file.replace(job.session_id[-12:], "0" * 12)
    shutil.copy(job.session_file, twin)
    assert find_by_match(sandbox.codex_home, job.created_at, job.cwd, job.prompt) is None


@pytest.mark.parametrize("extra", [["--ephemeral"], ["--thread-source", "mine"], ["--sandbox", "bogus-mode"], ["-s=nope"]])
def test_arguments_that_lose_the_history_or_codex_would_reject_are_refused(sandbox, extra):
    result = sandbox.cli("start", "ECHO hi", "--", *extra)
    one_line_error(result, 2, extra[0].split("=")[0].lstrip("-").split("-")[0] if extra[0] != "-s=nope" else "sandbox")
    assert Job.select().count() == 0


def test_ephemeral_says_why(sandbox):
    result = sandbox.cli("start", "ECHO hi", "--", "--ephemeral")
    one_line_error(result, 2, "codexdash cannot show or judge a job without its history")


@pytest.mark.parametrize("args,text", [
    (("--sandbox", "bogus"), "invalid sandbox 'bogus': one of read-only, workspace-write, danger-full-access"),
    (("--model", ""), "the model is empty"),
    (("--model", "  "), "the model is empty"),
])
def test_options_are_checked_before_anything_starts(sandbox, args, text):
    result = sandbox.cli("start", *args, "ECHO hi")
    one_line_error(result, 2, text)
    assert Job.select().count() == 0


def test_a_job_archived_before_the_first_look_is_found_followed_and_shown(sandbox):
    job_id = _cli_job(sandbox, "ECHO archived answer")
    _wait_gone(job_id)
    live = [os.path.join(d, f) for d, _, fs in os.walk(sandbox.codex_home / "sessions") for f in fs]
    assert len(live) == 1
    archive = archived_dir(sandbox.codex_home)
    archive.mkdir()
    moved = archive / os.path.basename(live[0])
    os.rename(live[0], moved)
    rows = _listed(sandbox)
    assert rows[job_id]["status"] == "completed"
    assert rows[job_id]["session_file"] == str(moved)
    logs = sandbox.cli("logs", job_id)
    assert logs.returncode == 0 and "archived answer" in logs.stdout
    tail = sandbox.cli("logs", job_id, "--tail", "5")
    assert tail.returncode == 0 and "archived answer" in tail.stdout
    show = sandbox.cli("show", job_id)
    assert str(moved) in show.stdout


def test_a_stored_path_that_moved_is_followed(sandbox):
    job = sandbox.start("ECHO moved later")
    wait_for(lambda: sandbox.engine.refresh([job]) and not job.is_live, message="the job to end")
    old = job.session_file
    archive = archived_dir(sandbox.codex_home)
    archive.mkdir()
    os.rename(old, archive / os.path.basename(old))
    logs = sandbox.cli("logs", job.id, "--tail", "5")
    assert logs.returncode == 0 and "moved later" in logs.stdout, logs.stderr
    assert Job.get_by_id(job.id).session_file == str(archive / os.path.basename(old))
    show = sandbox.cli("show", job.id)
    assert old not in show.stdout


def test_a_look_under_another_codex_home_settles_from_the_jobs_own(sandbox, tmp_path):
    done = _cli_job(sandbox, "ECHO from home one")
    _wait_gone(done)
    other = tmp_path / "other-home"
    other.mkdir()
    rows = _listed(sandbox, CODEX_HOME=str(other))
    assert rows[done]["status"] == "completed"
    assert rows[done]["session_file"].startswith(str(sandbox.codex_home))
    assert Job.get_by_id(done).codex_home == str(sandbox.codex_home)


def test_a_failure_says_why_in_codexs_words(sandbox):
    job_id = _cli_job(sandbox, "please FAIL now")
    _wait_gone(job_id)
    rows = _listed(sandbox)
    assert rows[job_id]["status"] == "failed"
    assert rows[job_id]["error"] == "ERROR: Connection failed: error sending request (fake model server unreachable)"
    show = sandbox.cli("show", job_id)
    assert "error: ERROR: Connection failed" in show.stdout


def test_the_stderr_copy_is_bounded(sandbox):
    from codexdash import codex_stderr

    path = sandbox.root / "big.log"
    with open(path, "wb") as fh:
        fh.write(b"noise line\n" * 200_000 + b"error: the last word\n")
    codex_stderr.trim(path)
    assert os.path.getsize(path) <= codex_stderr.KEEP_BYTES
    assert codex_stderr.last_error(path) == "error: the last word"
    assert open(path, "rb").read().startswith(b"noise line\n")  # cut at a line start


def test_forgetting_a_job_removes_its_record_history_and_stderr_copy_never_its_session(sandbox):
    from codexdash import codex_stderr
    from codexdash.store import JobEvent

    job_id = _cli_job(sandbox, "ECHO forget me")
    running = _cli_job(sandbox, "please SLEEP 30")
    _wait_gone(job_id)
    session = _listed(sandbox)[job_id]["session_file"]
    stderr = codex_stderr.stderr_path(sandbox.db_path, job_id)
    assert stderr.exists()
    one_line_error(sandbox.cli("forget", running), 1, "kill it or let it end")
    result = sandbox.cli("forget", job_id)
    assert result.returncode == 0, result.stderr
    assert Job.get_or_none(Job.id == job_id) is None and JobEvent.select().where(JobEvent.job == job_id).count() == 0
    assert not stderr.exists() and os.path.exists(session)
    assert Job.get_or_none(Job.id == running) is not None
