"""The command line as users and scripts run it: real processes, real database file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from codexdash.store import Job
from tests.conftest import SAMPLES, wait_for

JSON_KEYS = {"id", "pid", "status", "cwd", "prompt", "model", "created_at", "ended_at", "exit_code", "session_id",
             "session_file", "tokens", "cpu_percent", "rss_bytes", "error", "parent_id", "retry_of"}


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


def test_logs_follow_prints_appended_lines_and_stops_with_the_job(sandbox):
    job = json.loads(sandbox.cli("start", "--json", "STREAM 3").stdout)
    follow = subprocess.run([sys.executable, "-m", "codexdash", "logs", job["id"], "--follow"], env=sandbox.env(),
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert follow.returncode == 0, follow.stderr
    assert "step 3 of 3" in follow.stdout and "✔ completed" in follow.stdout


def test_logs_follow_of_a_file_follows_it_replaced_and_ends_when_it_is_archived(sandbox):
    day = sandbox.codex_home / "sessions" / "2026" / "01" / "02"
    day.mkdir(parents=True)
    path = day / "rollout-2026-01-02T03-04-05-0199aaaa-bbbb-7ccc-8ddd-eeeeffff0000.jsonl"
    lines = (SAMPLES / "completed-tool-call.jsonl").read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0])
    follow = subprocess.Popen([sys.executable, "-m", "codexdash", "logs", str(path), "--follow", "--raw"],
                              env=sandbox.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              stdin=subprocess.DEVNULL)
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(iter(follow.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        wait_for(lambda: len(out) >= 1, message="the first line")
        with open(path, "ab") as fh:
            fh.write(lines[1])
        wait_for(lambda: len(out) >= 2, message="the appended line")
        fresh = day / "rollout.tmp"
        fresh.write_bytes(b"".join(lines[:3]))
        os.replace(fresh, path)  # a new inode under the name: read again from its start
        wait_for(lambda: len(out) >= 5, message="the replaced file")
        archived = sandbox.codex_home / "archived_sessions"
        archived.mkdir()
        os.rename(path, archived / path.name)
        assert follow.wait(timeout=30) == 0, follow.stderr.read()
    finally:
        follow.kill()
    reader.join(timeout=15)
    assert [json.loads(line) for line in out] == [json.loads(line) for line in lines[:2] + lines[:3]]


def test_logs_follow_of_a_file_says_it_was_archived(sandbox):
    day = sandbox.codex_home / "sessions" / "2026" / "01" / "02"
    day.mkdir(parents=True)
    path = day / "rollout-2026-01-02T03-04-05-0199aaaa-bbbb-7ccc-8ddd-eeeeffff0000.jsonl"
    path.write_bytes((SAMPLES / "completed-tool-call.jsonl").read_bytes())
    follow = subprocess.Popen([sys.executable, "-m", "codexdash", "logs", str(path), "--follow"],
                              env=sandbox.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              stdin=subprocess.DEVNULL)
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(iter(follow.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any("completed" in line for line in out), message="the session printed")
        with open(path, "ab") as fh:  # seen once the follower watches the file (a move before that is a deletion)
            fh.write(json.dumps({"type": "response_item", "payload": {"type": "message", "role": "assistant", "content": [
                {"type": "output_text", "text": "one more"}]}}).encode() + b"\n")
        wait_for(lambda: any("one more" in line for line in out), message="the appended line")
        archived = sandbox.codex_home / "archived_sessions"
        archived.mkdir()
        os.rename(path, archived / path.name)
        assert follow.wait(timeout=30) == 0, follow.stderr.read()
    finally:
        follow.kill()
    reader.join(timeout=15)
    assert f"the session file moved to {archived / path.name}" in out[-2]  # then the token total


def test_doctor_reports_what_it_found(sandbox):
    ok = sandbox.cli("doctor")
    assert ok.returncode == 0, ok.stdout
    assert "Codex command" in ok.stdout and "CODEX_HOME" in ok.stdout and "database" in ok.stdout
    bad = sandbox.cli("doctor", CODEX_HOME=str(sandbox.root / "missing"), CODEXDASH_CODEX="nope-codex")
    assert bad.returncode == 1 and "2 problem(s)" in bad.stdout
