"""Codex sessions codexdash did not start: listed read-only beside the jobs, logs work, kill
refuses."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess

import pytest

from codexdash.session_files import iter_session_files
from tests.conftest import wait_for
from tests.test_cli import one_line_error


def run_codex_by_hand(sandbox, prompt: str, wait: bool = True) -> subprocess.Popen:
    """`codex exec` as a script or a person would run it: no codexdash, no marker."""
    env = {k: v for k, v in os.environ.items() if k != "CODEXDASH_JOB"}
    env["CODEX_HOME"] = str(sandbox.codex_home)
    proc = subprocess.Popen([str(sandbox.codex), "exec", "--skip-git-repo-check", "--", prompt], cwd=sandbox.root,
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if wait:
        assert proc.wait(timeout=30) == 0
    return proc


def listed(sandbox, *extra: str) -> dict[str, dict]:
    result = sandbox.cli("list", "--json", *extra)
    assert result.returncode == 0, result.stderr
    return {row["id"]: row for row in json.loads(result.stdout)}


def test_a_session_run_by_hand_is_listed_read_only_with_its_state(sandbox):
    run_codex_by_hand(sandbox, "ECHO by hand")
    job = json.loads(sandbox.cli("start", "--json", "ECHO by codexdash").stdout)
    wait_for(lambda: len(iter_session_files(sandbox.codex_home)) == 2, message="both session files")
    rows = wait_for(lambda: (r := listed(sandbox)) and r[job["id"]]["status"] == "completed" and r, message="the job to end")
    external = [r for r in rows.values() if r["external"]]
    assert len(external) == 1, rows  # the job's own session is never listed twice
    ext = external[0]
    assert ext["status"] == "completed" and ext["prompt"] == "ECHO by hand" and ext["cwd"] == str(sandbox.root)
    assert ext["id"] == ext["session_id"] and ext["tokens"] == 15 and ext["model"] == "fake-model"
    assert rows[job["id"]]["external"] is False
    assert all(not r["external"] for r in listed(sandbox, "--no-external").values())
    text = sandbox.cli("list")
    assert "~" + ext["id"][-12:] in text.stdout and "ECHO by hand" in text.stdout


def test_a_running_session_by_hand_is_running_and_cannot_be_killed(sandbox):
    proc = run_codex_by_hand(sandbox, "please SLEEP 30", wait=False)
    try:
        row = wait_for(lambda: [r for r in listed(sandbox).values() if r["external"] and r["status"] == "running"],
                       message="the session to show as running")[0]
        assert row["pid"] == proc.pid
        result = sandbox.cli("kill", "--yes", row["id"][-12:])
        one_line_error(result, 1, "not started by codexdash: no marker to verify")
        assert proc.poll() is None  # nothing was sent
        logs = sandbox.cli("logs", row["id"])
        assert logs.returncode == 0 and "please SLEEP 30" in logs.stdout and "$ sleep 30" in logs.stdout
        show = sandbox.cli("show", "~" + row["id"][-12:])
        assert show.returncode == 0 and "read-only" in show.stdout
    finally:
        proc.kill()
        proc.wait()


def test_codexs_own_index_is_read_where_it_exists(sandbox):
    run_codex_by_hand(sandbox, "ECHO indexed")
    path = iter_session_files(sandbox.codex_home)[0]
    session_id = path[-42:-6]
    # The index lists the session; a second row names a file that is gone: it is left out.
    db = sqlite3.connect(sandbox.codex_home / "state_5.sqlite")
    db.execute("CREATE TABLE threads (id TEXT PRIMARY KEY, rollout_path TEXT, created_at INTEGER, updated_at INTEGER,"
               " thread_source TEXT, source TEXT)")
    db.execute("INSERT INTO threads VALUES (?, ?, 1, strftime('%s','now'), NULL, 'exec')", (session_id, path))
    db.execute("INSERT INTO threads VALUES ('gone', '/nowhere/rollout.jsonl', 1, strftime('%s','now'), NULL, 'cli')")
    db.commit()
    db.close()
    rows = [r for r in listed(sandbox).values() if r["external"]]
    assert [r["id"] for r in rows] == [session_id]
    assert rows[0]["prompt"] == "ECHO indexed"


@pytest.mark.parametrize("ref", ["nosuchsession", "abc"])
def test_unknown_references_are_still_bad_input(sandbox, ref):
    run_codex_by_hand(sandbox, "ECHO x")
    one_line_error(sandbox.cli("logs", ref), 2, "no job")


def test_an_index_under_a_codex_home_with_uri_characters_is_read(sandbox, tmp_path):
    home = tmp_path / "odd ?#% home"
    home.mkdir()
    sandbox.codex_home = home
    run_codex_by_hand(sandbox, "ECHO odd home")
    path = iter_session_files(home)[0]
    db = sqlite3.connect(home / "state_5.sqlite")
    db.execute("CREATE TABLE threads (id TEXT, rollout_path TEXT, created_at INTEGER, updated_at INTEGER, thread_source TEXT)")
    db.execute("INSERT INTO threads VALUES (?, ?, 1, strftime('%s','now'), 'codexdash:someone')", (path[-42:-6], path))
    db.commit()
    db.close()
    # The index says the session is a job's (of a store not read here): not listed as external.
    result = sandbox.cli("list", "--json", CODEX_HOME=str(home))
    assert result.returncode == 0, result.stderr
    assert [r for r in json.loads(result.stdout) if r["external"]] == []


def test_finished_jobs_keep_their_token_detail(sandbox):
    job = json.loads(sandbox.cli("start", "--json", "ECHO count").stdout)
    row = wait_for(lambda: [r for r in json.loads(sandbox.cli("list", "--json").stdout)
                            if r["id"] == job["id"] and r["status"] == "completed"], message="the end")[0]
    assert row["tokens_detail"]["total_tokens"] == row["tokens"] == 15


def test_the_dashboards_looks_read_again_only_the_sessions_that_changed(sandbox, monkeypatch):
    from codexdash import external

    reads, scans = [], []
    read, scan = external.read_external, external.open_by_codex
    monkeypatch.setattr(external, "read_external", lambda path, *a: reads.append(path) or read(path, *a))
    monkeypatch.setattr(external, "open_by_codex", lambda home: scans.append(home) or scan(home))
    job = sandbox.start("ECHO mine")
    wait_for(lambda: sandbox.engine.refresh([sandbox.engine.find(job.id)])[0].job.status == "completed",
             message="the job to end")
    assert sandbox.engine.external_sessions() == [] and scans == []  # only claimed sessions: no process read

    proc = run_codex_by_hand(sandbox, "please SLEEP 30", wait=False)
    try:
        first = wait_for(lambda: [s for s in sandbox.engine.external_sessions() if s.status == "running"],
                         message="the session elsewhere running")[0]
        reads.clear()
        assert sandbox.engine.external_sessions() == [first] and reads == []  # unchanged: not read again
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # Its holder gone (and its end written): read again, and told as ended.
    ended = wait_for(lambda: [s for s in sandbox.engine.external_sessions() if s.status != "running"],
                     message="the session told as ended")[0]
    assert ended.session_file == first.session_file and reads
