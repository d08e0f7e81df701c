"""Starting jobs and settling how they ended, with real processes and a real database."""

from __future__ import annotations

import os

import psutil
import pytest

from codexdash.errors import BadInput
from codexdash.starting import StartRequest
from codexdash.store import Job, JobEvent, JobStatus
from tests.conftest import wait_for


def settled(sandbox, job):
    def check():
        sandbox.engine.refresh([job])
        return not job.is_live
    wait_for(check, message=f"job {job.id} to finish")
    return Job.get_by_id(job.id)


def test_start_is_detached_and_carries_the_marker(sandbox):
    job = sandbox.start("please SLEEP 30")
    assert job.status == JobStatus.RUNNING
    proc = psutil.Process(job.pid)
    assert os.getsid(job.pid) == job.pid != os.getsid(0)  # its own session
    assert os.getpgid(job.pid) == job.pid
    assert proc.environ()["CODEXDASH_JOB"] == job.marker
    assert f'shell_environment_policy.set.CODEXDASH_JOB="{job.marker}"' in proc.cmdline()
    for fd in (0, 1):  # nothing piped to us: /dev/null
        assert os.readlink(f"/proc/{job.pid}/fd/{fd}") == "/dev/null"
    # stderr goes to the job's own owner-only file beside the database, nothing else
    stderr = os.readlink(f"/proc/{job.pid}/fd/2")
    assert stderr == str(sandbox.db_path) + f".stderr/{job.id}.log"
    assert os.stat(stderr).st_mode & 0o777 == 0o600
    assert os.stat(os.path.dirname(stderr)).st_mode & 0o777 == 0o700
    stored = Job.get_by_id(job.id)
    assert (stored.pid, stored.pid_start_time) == (job.pid, pytest.approx(proc.create_time(), abs=0.005))
    states = [e.to_status for e in JobEvent.select().where(JobEvent.job == job.id).order_by(JobEvent.id)]
    assert states == ["starting", "running"]


def test_completed_job_gets_outcome_session_file_and_exit_code(sandbox):
    job = sandbox.start("ECHO all good")
    done = settled(sandbox, job)
    assert done.status == JobStatus.COMPLETED
    assert done.exit_code == 0
    assert done.session_file and done.session_file.startswith(str(sandbox.codex_home / "sessions"))
    assert done.session_id in done.session_file
    assert done.tokens == 15
    assert done.detail == "all good"
    assert psutil.pid_exists(job.pid) is False or psutil.Process(job.pid).status() != psutil.STATUS_ZOMBIE


def test_failed_job(sandbox):
    done = settled(sandbox, sandbox.start("FAIL please"))
    assert done.status == JobStatus.FAILED
    assert "Connection failed" in done.detail


def test_crash_without_outcome_is_lost_when_not_our_child(sandbox):
    job = sandbox.start("CRASH now")
    sandbox.engine._children.pop(job.id).wait()  # as if another codexdash had started it
    done = settled(sandbox, job)
    assert done.status == JobStatus.LOST
    assert done.exit_code is None


def test_session_file_found_while_running_from_open_files(sandbox):
    job = sandbox.start("STREAM 20")
    view = wait_for(lambda: (v := sandbox.engine.refresh([job])[0]).job.session_file and v, message="session file")
    assert os.path.exists(view.job.session_file)
    assert view.stats is not None and view.stats.rss_bytes > 0


def test_session_file_found_by_match_after_the_end(sandbox):
    job = sandbox.start("ECHO matched later")
    sandbox.engine._children[job.id].wait()
    job.session_file = None
    assert sandbox.engine.session_file(job) is not None
    assert "matched later" in open(job.session_file).read()


def test_stale_starting_record_is_resolved_by_its_marker(sandbox):
    # A codexdash died after spawning, before saving the PID: the process carries the marker.
    job = sandbox.start("please SLEEP 30")
    pid = job.pid
    with sandbox.engine.store.write():
        Job.update(status=JobStatus.STARTING, pid=None, pid_start_time=None, created_at=job.created_at - 60).where(Job.id == job.id).execute()
    again = Job.get_by_id(job.id)
    sandbox.engine.refresh([again])
    assert again.status == JobStatus.RUNNING and again.pid == pid


def test_stale_starting_record_with_nothing_behind_it_failed_to_start(sandbox):
    with sandbox.engine.store.write():
        Job.create(id="deadbeef00", marker="cdx-none", status=JobStatus.STARTING, argv="[]", cwd=str(sandbox.root),
                   prompt="never ran", created_at=1.0)
    job = Job.get_by_id("deadbeef00")
    sandbox.engine.refresh([job])
    assert job.status == JobStatus.FAILED_TO_START


@pytest.mark.parametrize(
    ("request_kwargs", "message"),
    [
        ({"prompt": "   "}, "prompt is empty"),
        ({"prompt": "x", "cwd": "/no/such/dir"}, "does not exist"),
    ],
)
def test_bad_start_requests_record_nothing(sandbox, request_kwargs, message):
    kwargs = {"cwd": str(sandbox.root), **request_kwargs}
    with pytest.raises(BadInput, match=message):
        sandbox.engine.start(StartRequest(**kwargs))
    assert Job.select().count() == 0


def test_missing_codex_command_records_nothing(sandbox):
    sandbox.engine.settings = sandbox.settings.with_overrides(codex_command=("no-such-codex-anywhere",))
    with pytest.raises(BadInput, match="not found"):
        sandbox.start("hello")
    assert Job.select().count() == 0


def test_find_by_unique_prefix(sandbox):
    with sandbox.engine.store.write():
        for jid in ("abc111", "abc222", "def333"):
            Job.create(id=jid, marker=jid, status=JobStatus.COMPLETED, argv="[]", cwd="/", prompt="p", created_at=1.0)
    assert sandbox.engine.find("def").id == "def333"
    assert sandbox.engine.find("abc1").id == "abc111"
    with pytest.raises(BadInput, match="ambiguous"):
        sandbox.engine.find("abc")
    with pytest.raises(BadInput, match="no job"):
        sandbox.engine.find("zzz")


def test_prompt_with_metacharacters_and_leading_dash_reaches_codex_verbatim(sandbox):
    prompt = "-n ECHO $(rm -rf /) `id` ; | & > < * ? ' \" \\ \n newline"
    done = settled(sandbox, sandbox.start(prompt))
    from codexdash.session_files import read_head

    assert read_head(done.session_file).prompt == prompt


def test_megabyte_prompt_goes_through_stdin(sandbox):
    prompt = "ECHO " + "y" * (1 << 20)
    done = settled(sandbox, sandbox.start(prompt))
    assert done.status == JobStatus.COMPLETED
    assert done.argv_list[-1] == "-"
    from codexdash.session_files import read_head

    assert read_head(done.session_file).prompt == prompt


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("prompt", "caf\udce9 au lait", "the prompt is not valid UTF-8"),
        ("prompt", "half an emoji \ud83d", "the prompt is not valid UTF-8"),
        ("model", "m\udcff", "--model m\\xff is not valid UTF-8"),
        ("sandbox", "\udcffread-only", "--sandbox \\xffread-only is not valid UTF-8"),
        ("extra_args", ["--config", "x=\udcfe"], "an argument for Codex x=\\xfe is not valid UTF-8"),
    ],
)
def test_text_that_is_not_utf8_is_refused_before_anything_is_stored(sandbox, field, value, said):
    request = StartRequest(prompt="hi", cwd=str(sandbox.root))
    setattr(request, field, value)
    with pytest.raises(BadInput, match=said.replace("\\", "\\\\")):
        sandbox.engine.start(request)
    assert Job.select().count() == 0


def test_a_working_directory_named_with_bytes_that_are_not_utf8_is_refused(sandbox):
    place = os.fsencode(sandbox.root) + b"/caf\xe9"
    os.mkdir(place)
    with pytest.raises(BadInput, match=r"working directory .*/caf\\xe9 is not valid UTF-8"):
        sandbox.start("hi", cwd=os.fsdecode(place))
    assert Job.select().count() == 0


def test_the_engine_reports_the_model_the_session_names(sandbox):
    go_on = sandbox.root / "go-on"
    job = sandbox.start(f"UNTIL {go_on} ECHO done")  # no --model: Codex's own choice
    assert job.model is None
    view = wait_for(lambda: next((v for v in sandbox.engine.refresh([job]) if v.session_model), None),
                    message="the model from the session")
    assert view.model == "fake-model" and view.tokens is not None
    go_on.touch()
