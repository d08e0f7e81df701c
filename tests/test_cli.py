"""The command line as users and scripts run it: real processes, real database file."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from codexdash.store import Job
from tests.conftest import SAMPLES, wait_for

JSON_KEYS = {"id", "pid", "status", "cwd", "prompt", "model", "created_at", "ended_at", "exit_code", "session_id",
             "session_file", "tokens", "cpu_percent", "rss_bytes", "error", "parent_id", "retry_of", "external", "tokens_detail", "name", "worktree", "host", "last_activity"}


def one_line_error(result, code: int, text: str) -> None:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert text in lines[0] and "Traceback" not in result.stderr


def test_start_list_logs_kill(sandbox):
    started = sandbox.cli("start", "--model", "m-1", "--json", "please SLEEP 60", "--", "--sandbox", "read-only")
    assert started.returncode == 0, started.stderr
    job = json.loads(started.stdout)
    assert set(job) == JSON_KEYS
    assert job["status"] == "running" and job["pid"] > 0 and job["model"] == "m-1"

    listed = sandbox.cli("list", "--json")
    (row,) = json.loads(listed.stdout)
    assert set(row) == JSON_KEYS
    assert row["id"] == job["id"] and row["model"] == "m-1" and row["status"] == "running"

    def logs_show_command():
        out = sandbox.cli("logs", job["id"][:4]).stdout
        return "$ sleep 60" in out and out
    out = wait_for(logs_show_command, message="the command in the logs")
    assert "› please SLEEP 60" in out

    raw = sandbox.cli("logs", job["id"], "--raw", "--tail", "1")
    assert raw.returncode == 0 and json.loads(raw.stdout)["type"] in ("response_item", "event_msg")

    text = sandbox.cli("list").stdout
    assert job["id"] in text and "● running" in text

    killed = sandbox.cli("kill", job["id"], "--yes")
    assert killed.returncode == 0, killed.stderr
    assert "✔ start time" in killed.stdout and "SIGINT" in killed.stdout
    assert json.loads(sandbox.cli("show", job["id"], "--json").stdout)["status"] == "killed"
    args = Job.get_by_id(job["id"]).argv_list
    assert args[-4:] == ["--sandbox", "read-only", "--", "please SLEEP 60"]


def test_kill_asks_on_a_terminal_and_refuses_without_one(sandbox):
    job = json.loads(sandbox.cli("start", "--json", "STREAM 60").stdout)
    result = sandbox.cli("kill", job["id"])  # stdin is not a terminal, no --yes
    one_line_error(result, 2, "pass --yes")
    assert json.loads(sandbox.cli("show", job["id"], "--json").stdout)["status"] == "running"


def test_refused_kill_exits_1_and_says_why(sandbox):
    job = json.loads(sandbox.cli("start", "--json", "EXEC now").stdout)
    wait_for(lambda: "sleep" in open(f"/proc/{job['pid']}/cmdline").read(), message="the exec")
    result = sandbox.cli("kill", job["id"], "--yes")
    one_line_error(result, 1, "refusing to kill")
    assert "✖ marker" in result.stdout
    os.kill(job["pid"], 9)


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (("start", ""), 2, "prompt is empty"),
        (("start", "--cwd", "/no/such/place", "hi"), 2, "does not exist"),
        (("show", "nosuchjob"), 2, "no job"),
        (("kill", "nosuchjob", "--yes"), 2, "no job"),
        (("logs", "/no/such/file.jsonl"), 2, "no session file"),
        (("logs", "x", "--tail", "-3"), 2, ""),
        (("frobnicate",), 2, "invalid choice"),
        (("list", "--bogus"), 2, "unrecognized"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(sandbox, args, code, text):
    result = sandbox.cli(*args)
    one_line_error(result, code, text)
    assert Job.select().count() == 0


def test_codex_command_not_found(sandbox):
    result = sandbox.cli("start", "hi", CODEXDASH_CODEX="/nowhere/codex")
    one_line_error(result, 2, "not found")
    assert Job.select().count() == 0


def test_corrupt_database_is_reported_and_kept(sandbox):
    bad = sandbox.root / "bad.db"
    bad.write_bytes(b"garbage" * 50)
    result = sandbox.cli("list", CODEXDASH_DB=str(bad))
    one_line_error(result, 1, "not an SQLite database")
    assert bad.read_bytes() == b"garbage" * 50


def test_logs_of_a_session_file_and_its_tail(sandbox):
    path = SAMPLES / "completed-tool-call.jsonl"
    full = sandbox.cli("logs", str(path))
    assert full.returncode == 0
    assert "$ sleep 2" in full.stdout and "✔ completed: hi from mock" in full.stdout
    last = sandbox.cli("logs", str(path), "--tail", "1")
    assert last.stdout.strip().splitlines()[-1] == "✔ completed: hi from mock"
    assert "sleep 2" not in last.stdout


def test_logs_of_a_file_it_cannot_read_says_why_and_fails(sandbox):
    """The process ends at once after `logs FILE` (no interpreter teardown): its error is still
    written and its status still the command's."""
    damaged = sandbox.root / "rollout-2026-01-01T00-00-00-0199a213-81c0-7800-8aa1-bbab2a035a53.jsonl.zst"
    damaged.write_bytes(b"\x28\xb5\x2f\xfd\x00\x00 cut short")
    one_line_error(sandbox.cli("logs", str(damaged)), 1, "cut short or damaged")
    one_line_error(sandbox.cli("logs", str(damaged), "--tail", "5"), 1, "cut short or damaged")


def test_logs_follow_prints_appended_lines_and_stops_with_the_job(sandbox):
    job = json.loads(sandbox.cli("start", "--json", "STREAM 3").stdout)
    follow = subprocess.run([sys.executable, "-m", "codexdash", "logs", job["id"], "--follow"], env=sandbox.env(),
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert follow.returncode == 0, follow.stderr
    assert "step 3 of 3" in follow.stdout and "✔ completed" in follow.stdout


@contextlib.contextmanager
def following(sandbox, path: Path, *args: str):
    """`logs PATH --follow ARGS` running, and the lines it printed so far (read as they come)."""
    follow = subprocess.Popen([sys.executable, "-m", "codexdash", "logs", str(path), "--follow", *args],
                              env=sandbox.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              stdin=subprocess.DEVNULL)
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(iter(follow.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        yield follow, out
    finally:
        follow.kill()
        reader.join(timeout=15)


def session_path(sandbox) -> Path:
    day = sandbox.codex_home / "sessions" / "2026" / "01" / "02"
    day.mkdir(parents=True)
    return day / "rollout-2026-01-02T03-04-05-0199aaaa-bbbb-7ccc-8ddd-eeeeffff0000.jsonl"


def archive(sandbox, path: Path) -> Path:
    """Moves the session file where Codex archives it; its new path."""
    archived = sandbox.codex_home / "archived_sessions"
    archived.mkdir()
    os.rename(path, archived / path.name)
    return archived / path.name


def test_logs_follow_of_a_file_follows_it_replaced_and_ends_when_it_is_archived(sandbox):
    path = session_path(sandbox)
    day = path.parent
    lines = (SAMPLES / "completed-tool-call.jsonl").read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0])
    with following(sandbox, path, "--raw") as (follow, out):
        wait_for(lambda: len(out) >= 1, message="the first line")
        with open(path, "ab") as fh:
            fh.write(lines[1])
        wait_for(lambda: len(out) >= 2, message="the appended line")
        fresh = day / "rollout.tmp"
        fresh.write_bytes(b"".join(lines[:3]))
        os.replace(fresh, path)  # a new inode under the name, beginning as the file did: read on
        wait_for(lambda: len(out) >= 3, message="the line the replacement added")
        fresh.write_bytes(b"".join(lines[3:5]))
        os.replace(fresh, path)  # another file: read from its start
        wait_for(lambda: len(out) >= 5, message="the other file")
        archive(sandbox, path)
        assert follow.wait(timeout=30) == 0, follow.stderr.read()
    assert [json.loads(line) for line in out] == [json.loads(line) for line in lines[:3] + lines[3:5]]


def test_logs_follow_of_a_file_says_it_was_archived(sandbox):
    path = session_path(sandbox)
    path.write_bytes((SAMPLES / "completed-tool-call.jsonl").read_bytes())
    with following(sandbox, path) as (follow, out):
        wait_for(lambda: any("completed" in line for line in out), message="the session printed")
        with open(path, "ab") as fh:  # seen once the follower watches the file (a move before that is a deletion)
            fh.write(json.dumps({"type": "response_item", "payload": {"type": "message", "role": "assistant", "content": [
                {"type": "output_text", "text": "one more"}]}}).encode() + b"\n")
        wait_for(lambda: any("one more" in line for line in out), message="the appended line")
        moved = archive(sandbox, path)
        assert follow.wait(timeout=30) == 0, follow.stderr.read()
    assert f"the session file moved to {moved}" in out[-2]  # then the token total


def test_doctor_reports_what_it_found(sandbox):
    ok = sandbox.cli("doctor")
    assert ok.returncode == 0, ok.stdout
    assert "Codex command" in ok.stdout and "CODEX_HOME" in ok.stdout and "database" in ok.stdout
    bad = sandbox.cli("doctor", CODEX_HOME=str(sandbox.root / "missing"), CODEXDASH_CODEX="nope-codex")
    assert bad.returncode == 1 and "2 problem(s)" in bad.stdout


# ---- zstd-compressed sessions --------------------------------------------------------------------

LOG_MODES = [(), ("--tail", "1"), ("--tail", "4"), ("--raw",), ("--raw", "--tail", "2")]


def compressed(path, into):
    import zstandard

    target = into / (path.name + ".zst")
    target.write_bytes(zstandard.ZstdCompressor().compress(path.read_bytes()))
    return target


@pytest.mark.parametrize("mode", LOG_MODES, ids=" ".join)
def test_logs_of_a_compressed_session_are_those_of_the_plain_one(sandbox, mode):
    plain = SAMPLES / "completed-tool-call.jsonl"
    packed = compressed(plain, sandbox.root)
    want, got = sandbox.cli("logs", str(plain), *mode), sandbox.cli("logs", str(packed), *mode)
    assert (got.returncode, got.stderr) == (0, "")
    assert got.stdout == want.stdout and "unreadable" not in got.stdout


def test_following_a_compressed_session_prints_it_and_ends(sandbox):
    plain = SAMPLES / "completed-tool-call.jsonl"
    packed = compressed(plain, sandbox.root)
    followed = sandbox.cli("logs", str(packed), "--follow", timeout=30)
    assert (followed.returncode, followed.stderr) == (0, "")
    assert "✔ completed: hi from mock" in followed.stdout and "compressed" in followed.stdout
    raw = sandbox.cli("logs", str(packed), "--follow", "--raw", timeout=30)
    assert raw.returncode == 0 and raw.stdout == sandbox.cli("logs", str(plain), "--raw").stdout


@pytest.mark.parametrize("mode", [*LOG_MODES, ("--follow",)], ids=" ".join)
def test_a_compressed_session_that_cannot_be_read_says_so_in_one_line(sandbox, mode):
    packed = compressed(SAMPLES / "completed-tool-call.jsonl", sandbox.root)
    cut = sandbox.root / "cut.jsonl.zst"
    cut.write_bytes(packed.read_bytes()[:-7])
    one_line_error(sandbox.cli("logs", str(cut), *mode, timeout=30), 1, "zstd-compressed and cut short")
    hide = sandbox.root / "no-zstd"
    hide.mkdir()
    (hide / "zstandard.py").write_text("raise ImportError('not installed')\n")
    missing = sandbox.cli("logs", str(packed), *mode, PYTHONPATH=str(hide), timeout=30)
    one_line_error(missing, 1, "zstd-compressed and the Python package zstandard is not installed")


def test_a_job_whose_session_was_compressed_still_shows_it(sandbox):
    job = sandbox.start("ECHO all done")
    wait_for(lambda: (sandbox.engine.reconcile(job), not job.is_live)[1], message="the job to end")
    plain = sandbox.engine.session_file(job)
    assert plain and sandbox.engine.read_summary(job).outcome == "completed"
    packed = compressed(Path(plain), Path(plain).parent)
    os.unlink(plain)  # as Codex rewrites it: the .jsonl becomes .jsonl.zst
    Job.update(session_file=str(packed)).where(Job.id == job.id).execute()  # as discovery finds it
    job = sandbox.job(job.id)
    summary = sandbox.engine.read_summary(job)
    assert summary.outcome == "completed" and summary.outcome_text == "all done"
    for mode in ((), ("--tail", "2"), ("--follow",)):
        out = sandbox.cli("logs", job.id, *mode, timeout=30)
        assert out.returncode == 0 and "✔ completed: all done" in out.stdout, (mode, out.stderr)


# ---- a reader that goes away -----------------------------------------------------------------------

def big_session(root) -> Path:
    """A session whose rendering is far larger than a pipe holds (64 KiB on Linux)."""
    path = root / "big.jsonl"
    with path.open("w") as fh:
        for i in range(2000):
            item = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": f"{i} " + "y" * 200}]}
            fh.write(json.dumps({"type": "response_item", "payload": item}) + "\n")
    return path


def many_jobs(count: int) -> str:
    """`count` finished jobs (and as many history lines on the first one): large listings."""
    from codexdash.store import JobEvent

    now = __import__("time").time()
    rows = [dict(id=f"job{i:06d}", marker=f"m{i}", status="completed", argv="[]", cwd="/tmp", prompt=f"prompt {i} " + "p" * 60,
                 created_at=now - i, ended_at=now - i, exit_code=0) for i in range(count)]
    Job.insert_many(rows).execute()
    JobEvent.insert_many([dict(job="job000000", at=now - i, kind="state", to_status="completed") for i in range(count)]).execute()
    return "job000000"


def through_head(sandbox, *args: str, timeout: float = 60):
    """`codexdash ARGS | head -1` with real processes: codexdash's exit status and stderr."""
    err = sandbox.root / "stderr.txt"
    with err.open("wb") as err_file:
        writer = subprocess.Popen([sys.executable, "-m", "codexdash", *args], stdout=subprocess.PIPE, stderr=err_file,
                                  stdin=subprocess.DEVNULL, env=sandbox.env(), cwd=sandbox.root)
        head = subprocess.Popen(["head", "-1"], stdin=writer.stdout, stdout=subprocess.PIPE)
        writer.stdout.close()  # head holds the only reading end: when it exits, the pipe is closed
        try:
            first = head.communicate(timeout=timeout)[0]
            code = writer.wait(timeout=timeout)
        finally:
            for proc in (writer, head):
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    return code, err.read_text(), first


@pytest.mark.parametrize("mode", [(), ("--raw",), ("--tail", "1500"), ("--raw", "--tail", "1500"), ("--follow",), ("--raw", "--follow")],
                         ids=" ".join)
def test_logs_into_a_pipe_closed_early_ends_quietly(sandbox, mode):
    code, err, first = through_head(sandbox, "logs", str(big_session(sandbox.root)), *mode)
    assert (code, err) == (0, "")
    assert first.strip()


@pytest.mark.parametrize("args", [("list",), ("list", "--all"), ("list", "--json"), ("list", "--all", "--json"),
                                  ("show", "job000000"), ("show", "job000000", "--json"), ("--help",)], ids=" ".join)
def test_every_command_into_a_pipe_closed_early_ends_quietly(sandbox, args):
    many_jobs(1500)
    code, err, first = through_head(sandbox, *args)
    assert (code, err) == (0, "")
    assert first.strip()


@pytest.mark.parametrize("args", [("list",), ("list", "--json"), ("show", "job000000"), ("--version",), ("logs", "SAMPLE"),
                                  ("logs", "SAMPLE", "--raw", "--tail", "2")], ids=" ".join)
def test_a_short_output_into_a_pipe_already_closed_ends_quietly(sandbox, args):
    many_jobs(1)
    args = tuple(str(SAMPLES / "completed-message.jsonl") if a == "SAMPLE" else a for a in args)
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will ever read: the first write (or the flush at exit) fails
    try:
        done = subprocess.run([sys.executable, "-m", "codexdash", *args], stdout=write_end, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, env=sandbox.env(), cwd=sandbox.root, timeout=60)
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (0, b"")


# ---- arguments that are not UTF-8, a working directory this user cannot enter -----------------------

def undecodable(raw: bytes) -> str:
    return os.fsdecode(raw)  # what Python makes of such bytes in argv; subprocess turns it back


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("start", b"caf\xe9 au lait"), "the prompt is not valid UTF-8"),
        (("start", "--cwd", b"DIR/caf\xe9", "hi"), "the working directory"),
        (("start", "--model", b"m\xff", "hi"), "--model m\\xff is not valid UTF-8"),
        (("start", "hi", "--", "--config", b"x=\xfe"), "an argument for Codex x=\\xfe is not valid UTF-8"),
        (("--codex-home", b"/tmp/h\xff", "start", "hi"), "--codex-home /tmp/h\\xff is not valid UTF-8"),
        (("show", b"\xff"), "the job id \\xff is not valid UTF-8"),
        (("kill", b"\xff", "--yes"), "the job id \\xff is not valid UTF-8"),
        (("logs", b"\xff"), "no session file \\xff"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_arguments_that_are_not_utf8_are_one_line_exit_2_and_store_nothing(sandbox, args, said):
    os.mkdir(os.fsencode(sandbox.root) + b"/caf\xe9")
    args = [undecodable(a.replace(b"DIR", os.fsencode(sandbox.root))) if isinstance(a, bytes) else a for a in args]
    result = sandbox.cli(*args)
    one_line_error(result, 2, said)
    assert Job.select().count() == 0


def test_a_prompt_on_stdin_that_is_not_utf8_is_one_line_exit_2(sandbox):
    result = subprocess.run([sys.executable, "-m", "codexdash", "start", "-"], input=b"caf\xe9\n", capture_output=True,
                            env=sandbox.env(), cwd=sandbox.root, timeout=60)
    assert result.returncode == 2 and result.stderr.decode().count("\n") == 1, result.stderr
    assert b"prompt read from stdin is not valid UTF-8" in result.stderr and b"Traceback" not in result.stderr
    assert Job.select().count() == 0


def test_a_session_file_named_with_bytes_that_are_not_utf8_is_still_read(sandbox):
    path = os.fsencode(sandbox.root) + b"/rollout-\xff.jsonl"
    with open(path, "wb") as fh:
        fh.write((SAMPLES / "completed-message.jsonl").read_bytes())
    result = sandbox.cli("logs", undecodable(path), "--tail", "1")
    assert result.returncode == 0 and "✔ completed" in result.stdout, result.stderr


def as_another_user() -> list[str] | None:
    """The prefix that runs a command as a user file permissions apply to ([] when they apply to
    us already), or None."""
    import pwd
    import shutil

    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        return None
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if shutil.which("setpriv") else None


@pytest.fixture
def unprivileged():
    """A sandbox that an unprivileged user owns, and `cli` to run codexdash as that user."""
    import pwd
    import shutil
    import tempfile

    prefix = as_another_user()
    if prefix is None:
        pytest.skip("running as root with no way to become an unprivileged user (setpriv, user nobody)")
    repo = str(Path(__file__).resolve().parent.parent)
    base = Path(tempfile.mkdtemp(prefix="codexdash-unprivileged-"))  # root's pytest directories are closed to others
    env = dict(os.environ, HOME=str(base), CODEX_HOME=str(base / "home"), CODEXDASH_DB=str(base / "data" / "jobs.db"),
               CODEXDASH_CODEX=str(base / "bin" / "codex"), CODEXDASH_CONFIG=str(base / "config.toml"),
               PYTHONPATH=os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")])))

    def run(*argv: str):
        return subprocess.run([*prefix, *argv], env=env, cwd=base, capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)

    try:
        for sub in ("home", "open", "bin"):
            (base / sub).mkdir()
        (base / "locked").mkdir(mode=0o700)
        (base / "locked" / "inner").mkdir()
        base.chmod(0o755)
        if prefix:
            nobody = pwd.getpwnam("nobody")
            for path in (base, base / "home", base / "open"):
                os.chown(path, nobody.pw_uid, nobody.pw_gid)  # locked/ stays root's, mode 0700
        else:
            (base / "locked").chmod(0o600)  # no x for its owner: we may not enter it
        if run(sys.executable, "-c", "import codexdash.cli, psutil, peewee").returncode != 0:
            pytest.skip(f"the unprivileged user cannot run {sys.executable} with codexdash")
        # Codex is started by codexdash running as that user: its interpreter must be one that
        # user can execute (a Python under /root is not).
        for python in (sys.executable, shutil.which("python3"), "/usr/bin/python3"):
            if python and run("/bin/sh", "-c", 'exec "$0" -c "import codexdash.fake_codex"', python).returncode == 0:
                break
        else:
            pytest.skip("no Python the unprivileged user can execute for the fake Codex")
        codex = base / "bin" / "codex"
        codex.write_text(f"#!{python}\nimport sys\nsys.path.insert(0, {repo!r})\n"
                         "from codexdash.fake_codex import main\nsys.exit(main())\n")
        codex.chmod(0o755)
        yield base, lambda *args: run(sys.executable, "-m", "codexdash", *args)
    finally:
        (base / "locked").chmod(0o700)
        shutil.rmtree(base, ignore_errors=True)


def test_a_working_directory_this_user_cannot_enter_is_one_line_exit_2_and_stores_nothing(unprivileged):
    base, cli = unprivileged
    for place, said in ((base / "locked", "cannot be entered"), (base / "locked" / "inner", "cannot be reached")):
        one_line_error(cli("start", "--cwd", str(place), "ECHO hi"), 2, said)
    assert json.loads(cli("list", "--all", "--json").stdout) == []
    # The same user can start a job elsewhere: it is the directory that is refused, not the setup.
    started = cli("start", "--json", "--cwd", str(base / "open"), "ECHO hi")
    assert started.returncode == 0, started.stderr
    job = json.loads(started.stdout)["id"]
    wait_for(lambda: json.loads(cli("show", job, "--json").stdout)["status"] == "completed", message="the job to complete")


def test_jobs_have_names_to_tell_them_apart(sandbox):
    named = json.loads(sandbox.cli("start", "--json", "--name", "api CI fix", "please SLEEP 30 then fix CI").stdout)
    assert named["name"] == "api CI fix"
    titled = json.loads(sandbox.cli("start", "--json", "\n\n  Fix the failing   CI of work3's api, then report back with a summary\nmore").stdout)
    assert titled["name"] == "Fix the failing CI of work3's api, then…"
    one_line_error(sandbox.cli("start", "--name", "two\nlines", "ECHO x"), 2, "the name must be one line")
    listing = sandbox.cli("list").stdout
    assert "api CI fix" in listing and "Fix the failing CI" in listing


class Watch:
    """`codexdash list --json --watch` running here, its JSON lines gathered as they come; its
    stdin and stdout are pipes, as ssh gives a watch on another box."""

    def __init__(self, sandbox, *args: str, before: tuple[str, ...] = (), env: dict[str, str] | None = None) -> None:
        """`args` after `--watch`; `before` ahead of `list` (`--host BOX`); `env` added to the sandbox's."""
        self.proc = subprocess.Popen([sys.executable, "-m", "codexdash", *before, "list", "--json", "--watch", *args],
                                     env=sandbox.env(**(env or {})), cwd=sandbox.root, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[dict] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(json.loads(line) for line in self.proc.stdout),
                                       daemon=True)
        self.reader.start()

    def snapshots(self) -> list[list[dict]]:
        return [line["jobs"] for line in list(self.lines) if "jobs" in line]

    def status(self, job_id: str) -> str | None:
        last = self.snapshots()[-1:] or [[]]
        return next((j["status"] for j in last[0] if j["id"] == job_id), None)

    def heartbeats(self) -> int:
        return sum(1 for line in list(self.lines) if "heartbeat" in line)


def test_list_watch_says_the_jobs_when_they_change_and_ends_with_its_reader(sandbox):
    one = sandbox.start("please SLEEP 60")
    watch = Watch(sandbox, "--interval", "0.1", "--heartbeat", "0.3")
    wait_for(lambda: watch.status(one.id) == "running", message="the first snapshot")
    assert set(watch.snapshots()[0][0]) == JSON_KEYS  # the rows of `list --json`
    two = json.loads(sandbox.cli("start", "--json", "please SLEEP 60").stdout)
    wait_for(lambda: watch.status(two["id"]) == "running", message="a job started, said")
    assert sandbox.cli("kill", two["id"], "--yes").returncode == 0
    wait_for(lambda: watch.status(two["id"]) == "killed", message="its end, said")
    beats = watch.heartbeats()
    wait_for(lambda: watch.heartbeats() >= beats + 2, message="heartbeats while nothing changes")
    snapshots = watch.snapshots()
    assert all(a != b for a, b in zip(snapshots, snapshots[1:]))  # a snapshot only when the jobs changed
    assert [j["id"] for j in snapshots[-1]] == [j["id"] for j in json.loads(sandbox.cli("list", "--json").stdout)]
    watch.proc.stdin.close()  # its reader went away (ssh's session input ends with its client)
    assert watch.proc.wait(timeout=30) == 0
    assert watch.proc.stderr.read() == ""


def test_list_watch_ends_quietly_when_its_output_is_closed(sandbox):
    sandbox.start("please SLEEP 60")
    watch = subprocess.Popen([sys.executable, "-m", "codexdash", "list", "--json", "--watch", "--no-external"],
                             env=sandbox.env(), cwd=sandbox.root, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    assert json.loads(watch.stdout.readline())["jobs"]
    watch.stdout.close()  # stdin stays open: the closed output alone ends it
    assert watch.wait(timeout=30) == 0
    assert watch.stderr.read() == b""
    watch.stdin.close()


def test_list_watch_asks_for_json_and_sound_periods(sandbox):
    one_line_error(sandbox.cli("list", "--watch"), 2, "--watch writes JSON lines for a program to read: add --json")
    one_line_error(sandbox.cli("list", "--json", "--watch", "--interval", "0"), 2, "--interval takes seconds")
    one_line_error(sandbox.cli("list", "--json", "--watch", "--heartbeat", "nan"), 2, "--heartbeat takes seconds")
    one_line_error(sandbox.cli("list", "--interval", "3"), 2, "--interval goes with --watch")
    one_line_error(sandbox.cli("list", "--json", "--watch", "--all-hosts"), 2, "--watch watches one box")
