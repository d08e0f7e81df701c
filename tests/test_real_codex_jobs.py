"""codexdash's record of jobs run by the real Codex CLI (each release, both shapes), offline.

What issue-level behaviour looks like with the real program rather than the fake one: each job
owns its session file, a job Codex rejects never takes a sibling's, an archived session is still
shown, a look under another CODEX_HOME settles nothing, follow-ups continue a session, and
token figures come with their detail.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psutil
import pytest

from codexdash.store import Job, JobStatus
from tests.conftest import wait_for
from tests.real_codex_support import mock_server, real_codex  # noqa: F401 (fixtures)
from tests.test_real_codex import codex_box, finished  # noqa: F401 (fixture)

pytestmark = pytest.mark.real_codex


def meta_of(path: str) -> dict:
    return json.loads(Path(path).read_text().split("\n", 1)[0])["payload"]


def test_a_job_codex_rejects_never_takes_a_siblings_file(codex_box):  # noqa: F811
    good = finished(codex_box, codex_box.start("say hi"))
    rejected = finished(codex_box, codex_box.start("say hi", extra_args=["--bogus-flag"]))  # Codex: exit 2, no file
    assert rejected.status == JobStatus.FAILED, (rejected.status, rejected.detail)
    assert rejected.session_file is None
    assert "unexpected argument '--bogus-flag'" in (rejected.error or "")
    again = Job.get_by_id(good.id)
    codex_box.engine.refresh([again])
    again = Job.get_by_id(good.id)
    assert again.status == JobStatus.COMPLETED and again.session_file == good.session_file
    assert meta_of(good.session_file)["thread_source"].endswith(good.id)


def test_two_jobs_with_one_prompt_each_own_their_file(codex_box):  # noqa: F811
    first = codex_box.start("please SLEEP 1")
    second = codex_box.start("please SLEEP 1")
    a, b = finished(codex_box, first), finished(codex_box, second)
    assert a.status == b.status == JobStatus.COMPLETED
    assert a.session_file != b.session_file
    assert meta_of(a.session_file)["thread_source"].endswith(a.id)
    assert meta_of(b.session_file)["thread_source"].endswith(b.id)


def test_an_archived_session_is_still_shown(codex_box):  # noqa: F811
    done = finished(codex_box, codex_box.start("say hi"))
    archive = codex_box.codex_home / "archived_sessions"
    archive.mkdir()
    moved = archive / Path(done.session_file).name
    shutil.move(done.session_file, moved)  # where Codex puts an archived session, same name
    logs = codex_box.cli("logs", done.id)
    assert logs.returncode == 0 and "› say hi" in logs.stdout and "✔ completed" in logs.stdout, logs.stderr
    tail = codex_box.cli("logs", done.id, "--tail", "2")
    assert tail.returncode == 0 and "✔ completed" in tail.stdout, tail.stderr
    shown = json.loads(codex_box.cli("show", done.id, "--json").stdout)
    assert shown["session_file"] == str(moved)


def test_a_look_under_another_codex_home_settles_nothing(codex_box, tmp_path):  # noqa: F811
    started = codex_box.cli("start", "say hi", "--json")
    assert started.returncode == 0, started.stderr
    job = json.loads(started.stdout)
    # The job ends with nobody watching; then a look from elsewhere.
    wait_for(lambda: not psutil.pid_exists(job["pid"]) or psutil.Process(job["pid"]).status() == psutil.STATUS_ZOMBIE,
             timeout=60, message="Codex to end")
    other = tmp_path / "other-codex-home"
    other.mkdir()
    elsewhere = json.loads(codex_box.cli("list", "--json", CODEX_HOME=str(other)).stdout)
    assert [j["status"] for j in elsewhere if j["id"] == job["id"]] == ["completed"]


def test_a_follow_up_continues_the_session_as_a_job_of_its_own(codex_box):  # noqa: F811
    parent = finished(codex_box, codex_box.start("say hi"))
    answer = codex_box.cli("resume", parent.id, "--json", "say hi again")
    assert answer.returncode == 0, answer.stderr
    child = json.loads(answer.stdout)
    assert child["parent_id"] == parent.id and child["id"] != parent.id
    done = finished(codex_box, Job.get_by_id(child["id"]))
    assert done.status == JobStatus.COMPLETED, done.detail
    assert done.session_file == parent.session_file  # Codex appends the turn to the same file
    assert Job.get_by_id(parent.id).status == JobStatus.COMPLETED
    logs = codex_box.cli("logs", done.id)
    assert "› say hi again" in logs.stdout


def test_live_tokens_come_with_their_detail(codex_box):  # noqa: F811
    job = codex_box.start("please SLEEP 120")

    def detail():
        listed = json.loads(codex_box.cli("list", "--json").stdout)
        return next((j.get("tokens_detail") for j in listed if j["id"] == job.id), None)
    got = wait_for(detail, timeout=15, message="tokens_detail in list --json")
    assert got == {"input_tokens": 10, "cached_input_tokens": 0, "output_tokens": 5, "reasoning_output_tokens": 0,
                   "total_tokens": 15}
