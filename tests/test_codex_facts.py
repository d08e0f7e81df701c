"""Facts about the real Codex CLI that codexdash relies on, asserted against each release.

These drive `codex` directly (not through codexdash), offline against the mock model server,
for every release in tests/real_codex_support.py and both program shapes. A release that
changes one of them fails here by name, before codexdash misreads it (see
docs/COMPATIBILITY.md and ../shared/CODEX_FACTS.md).
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from codexdash.events import CommandStatus, Kind, Outcome, SessionSummary, parse_lines
from tests.conftest import wait_for
from tests.real_codex_support import SHAPES, RealCodex, mock_server, real_codex  # noqa: F401 (fixtures)

pytestmark = pytest.mark.real_codex

USAGE_FIELDS = {"input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens", "total_tokens"}
# What codexdash may read of Codex's own index (state_5.sqlite), when it is there.
THREAD_COLUMNS = {"id", "rollout_path", "created_at", "updated_at", "source", "thread_source", "cwd", "title",
                  "first_user_message", "model", "tokens_used", "archived", "archived_at", "name"}


@dataclass
class Codex:
    """One release in one shape, with a CODEX_HOME and a working directory of its own."""

    release: RealCodex
    program: Path
    home: Path
    cwd: Path
    env: dict = field(default_factory=dict)

    @property
    def version(self) -> str:
        return self.release.version

    def argv(self, *args: str) -> list[str]:
        return [str(self.program), "exec", "--skip-git-repo-check", *args]

    def run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        # stdin at /dev/null: with an open pipe Codex waits for its end before doing anything.
        return subprocess.run(self.argv(*args), env=self.env, cwd=self.cwd, capture_output=True, text=True, timeout=60,
                              input=input, stdin=None if input is not None else subprocess.DEVNULL)

    def session_files(self) -> list[Path]:
        return sorted([*self.home.glob("sessions/**/rollout-*.jsonl*"), *self.home.glob("archived_sessions/**/rollout-*.jsonl*")])

    def only_session_file(self) -> Path:
        files = self.session_files()
        assert len(files) == 1, files
        return files[0]

    def threads(self) -> tuple[set[str], list[dict]]:
        """Codex's index, opened read-only: its `threads` columns and rows."""
        db = self.home / "state_5.sqlite"
        assert db.exists(), sorted(p.name for p in self.home.iterdir())
        con = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=10)
        try:
            con.row_factory = sqlite3.Row
            columns = {row["name"] for row in con.execute("PRAGMA table_info(threads)")}
            rows = [dict(row) for row in con.execute("SELECT * FROM threads")]
        finally:
            con.close()
        return columns, rows


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def of_type(recs: list[dict], rtype: str, ptype: str | None = None) -> list[dict]:
    return [r for r in recs if r.get("type") == rtype and (ptype is None or r["payload"].get("type") == ptype)]


@pytest.fixture(params=SHAPES)
def codex(request, real_codex, mock_server, tmp_path) -> Codex:  # noqa: F811
    home = tmp_path / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(mock_server.config_toml())
    cwd = tmp_path / "work"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEX")}
    env.update(CODEX_HOME=str(home), MOCK_API_KEY="offline")
    return Codex(real_codex, real_codex.program(request.param), home, cwd, env)


def test_thread_source_is_written_verbatim_as_session_meta_thread_source(codex):
    value = 'codexdash:job 42/ü "quoted" $HOME'
    done = codex.run("--thread-source", value, "-c", 'shell_environment_policy.set.CODEXDASH_JOB="cdx-1"', "--", "say hi")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("hi from mock")
    path = codex.only_session_file()
    first = records(path)[0]
    assert first["type"] == "session_meta"
    meta = first["payload"]
    assert meta["thread_source"] == value
    assert meta["cli_version"] == codex.version
    assert meta["id"] == meta["session_id"] and path.name.endswith(f"-{meta['id']}.jsonl")
    # stderr's header names the release and the session (human mode).
    assert f"OpenAI Codex v{codex.version}" in done.stderr and f"session id: {meta['id']}" in done.stderr


def test_resume_appends_the_new_turns_to_the_same_file(codex):
    first = codex.run("--thread-source", "cdx-first", "--", "say hi")
    assert first.returncode == 0, first.stderr
    path = codex.only_session_file()
    before = path.read_bytes()
    session_id = records(path)[0]["payload"]["id"]
    # Flags before `resume`, as codexdash passes them; the prompt after `--`, then from stdin.
    again = codex.run("-c", 'shell_environment_policy.set.CODEXDASH_JOB="cdx-2"', "--sandbox", "read-only",
                      "--thread-source", "cdx-second", "resume", session_id, "--", "say hi again")
    assert again.returncode == 0, again.stderr
    third = codex.run("resume", session_id, "-", input="and a third time")
    assert third.returncode == 0, third.stderr
    assert codex.session_files() == [path]
    after = path.read_bytes()
    assert after.startswith(before) and len(after) > len(before)  # appended, nothing rewritten
    recs = records(path)
    assert len(of_type(recs, "session_meta")) == 1
    assert recs[0]["payload"]["thread_source"] == "cdx-first"  # a resume's --thread-source changes nothing
    assert len(of_type(recs, "event_msg", "task_started")) == 3
    assert len(of_type(recs, "turn_context")) == 3
    events = parse_lines(path.read_bytes().splitlines())
    assert [e.text for e in events if e.kind == Kind.PROMPT] == ["say hi", "say hi again", "and a third time"]
    assert [e.outcome for e in events if e.kind == Kind.OUTCOME] == [Outcome.COMPLETED] * 3
    # Codex's index: still one thread, its first source and prompt, the tokens of all turns.
    _, rows = codex.threads()
    assert [(r["id"], r["thread_source"], r["first_user_message"], r["tokens_used"]) for r in rows] == [
        (session_id, "cdx-first", "say hi", 45)]


def test_resume_of_an_unknown_session_fails_and_says_why(codex):
    unknown = str(uuid.UUID(int=uuid.uuid4().int & ~(0xF << 76) | (0x7 << 76)))  # a UUIDv7-shaped id
    done = codex.run("resume", unknown, "--", "say hi")
    assert done.returncode == 1
    assert re.search(rf"^Error: .*no rollout found for thread id {unknown}", done.stderr, re.M), done.stderr
    assert codex.session_files() == []


def test_a_rejected_flag_value_exits_2_before_any_session_file(codex):
    done = codex.run("--sandbox", "bogus-mode", "--thread-source", "cdx-x", "--", "say hi")
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert "error: invalid value 'bogus-mode' for '--sandbox <SANDBOX_MODE>'" in lines, done.stderr
    assert "  [possible values: read-only, workspace-write, danger-full-access]" in lines
    assert done.stdout == ""
    assert codex.session_files() == []


def test_ephemeral_writes_no_session_file(codex):
    done = codex.run("--ephemeral", "--thread-source", "cdx-eph", "--", "say hi")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("hi from mock")
    assert codex.session_files() == []


def test_token_usage_record_comes_right_after_each_response(codex):
    done = codex.run("--", "please SLEEP 1")
    assert done.returncode == 0, done.stderr
    path = codex.only_session_file()
    recs = records(path)
    usage_records = of_type(recs, "token_usage_record")
    assert len(usage_records) == 2  # the tool call, then the final message
    for rec, thread_total in zip(usage_records, (15, 30)):
        p = rec["payload"]
        assert USAGE_FIELDS <= set(p["usage"]) and p["usage"]["total_tokens"] == 15
        assert p["response_id"] and p["turn_id"]
        assert p["thread_token_usage"]["total_tokens"] == thread_total  # Codex's running total
    # The first one is written before the tool command runs; token_count only once it returned.
    order = [(r["type"], r["payload"].get("type")) for r in recs]
    first_record = order.index(("token_usage_record", None))
    assert first_record < order.index(("response_item", "function_call_output"))
    assert first_record < order.index(("event_msg", "token_count"))
    lines = path.read_bytes().splitlines()
    so_far = SessionSummary()
    for event in parse_lines(lines[: first_record + 1]):
        so_far.add(event)
    assert so_far.tokens == 15  # what a follower shows while the command runs


def test_a_command_still_running_is_handed_back_as_such(codex):
    done = codex.run("--", "please SLEEP 5 YIELD 300")
    assert done.returncode == 0, done.stderr
    path = codex.only_session_file()
    (output,) = [r["payload"]["output"] for r in of_type(records(path), "response_item", "function_call_output")]
    assert re.search(r"^Process running with session ID \d+$", output.split("\nOutput:")[0], re.M), output
    results = [e for e in parse_lines(path.read_bytes().splitlines()) if e.kind == Kind.COMMAND_RESULT]
    assert results[0].status == CommandStatus.RUNNING
    assert of_type(records(path), "event_msg", "task_complete")


def test_sigint_during_a_command_aborts_it_and_the_turn(codex):
    mark = f"facts-{uuid.uuid4().hex[:12]}"
    proc = subprocess.Popen(codex.argv("--", "please SLEEP 120"), env={**codex.env, "CODEX_FACTS_MARK": mark}, cwd=codex.cwd,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        def tool_running():
            for p in psutil.process_iter():
                try:
                    if p.cmdline()[:2] == ["sleep", "120"] and p.environ().get("CODEX_FACTS_MARK") == mark:
                        return p
                except psutil.Error:
                    continue
            return None
        wait_for(tool_running, timeout=60, message="Codex to run the tool command")
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 1, err[-2000:]
    path = codex.only_session_file()
    recs = records(path)
    (output,) = [r["payload"]["output"] for r in of_type(recs, "response_item", "function_call_output")]
    assert re.search(r"^aborted by user$", output, re.M), output
    assert [r["payload"]["reason"] for r in of_type(recs, "event_msg", "turn_aborted")] == ["interrupted"]
    assert not of_type(recs, "event_msg", "task_complete")
    results = [e for e in parse_lines(path.read_bytes().splitlines()) if e.kind == Kind.COMMAND_RESULT]
    assert [e.status for e in results] == [CommandStatus.ABORTED]


def test_codex_index_lists_the_thread_with_its_source_and_file(codex):
    done = codex.run("--thread-source", "cdx-indexed", "--", "say hi")
    assert done.returncode == 0, done.stderr
    path = codex.only_session_file()
    columns, rows = codex.threads()
    assert THREAD_COLUMNS <= columns, THREAD_COLUMNS - columns
    (row,) = rows
    assert row["id"] == records(path)[0]["payload"]["id"]
    assert Path(row["rollout_path"]) == path
    assert row["thread_source"] == "cdx-indexed"
    assert os.path.realpath(row["cwd"]) == os.path.realpath(codex.cwd)
    assert row["source"] == "exec"
    assert row["first_user_message"] == "say hi" and row["tokens_used"] == 15
    assert not row["archived"]
