"""A job's changes (`codexdash diff`) and `start --worktree`: read from real Codex session files,
driven end to end with the fake agent in real Git repositories and outside Git."""

from __future__ import annotations

import json
import os
import pty
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from codexdash.changes import job_changes
from codexdash.session_edits import Action, Status, read_turn_lines, session_changes
from codexdash.store import Job, JobStatus, open_store
from tests.conftest import SAMPLES, wait_for
from tests.test_cli import one_line_error

REAL = "/home/operator/project"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def make_repo(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q")
    git(path, "config", "user.email", "t@example.invalid")
    git(path, "config", "user.name", "t")
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-qm", "start")
    return path


def finished(sandbox, job) -> Job:
    wait_for(lambda: sandbox.engine.refresh([job]) and not job.is_live, message=f"job {job.id} to end")
    return Job.get_by_id(job.id)


def run_job(sandbox, prompt: str, **kwargs) -> Job:
    job = finished(sandbox, sandbox.start(prompt, **kwargs))
    assert job.status == JobStatus.COMPLETED, job.detail
    return job


def diff_json(sandbox, job, *flags: str) -> dict:
    result = sandbox.cli("diff", "--json", *flags, job.id)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def by_display(data: dict) -> dict[str, dict]:
    return {f["display"]: f for f in data["files"]}


# ---- real session files ------------------------------------------------------------------


def _offset_of(path: Path, needle: str, nth: int) -> int:
    offset = seen = 0
    for line in path.open("rb"):
        if needle.encode() in line:
            seen += 1
            if seen == nth:
                return offset
        offset += len(line)
    raise AssertionError(f"{needle} #{nth} not in {path}")


def _touched(changes) -> dict[str, tuple]:
    return {p: (t.action, t.moved_to, t.moved_from, t.status) for p, t in changes.files.items()}


@pytest.mark.parametrize("name", ["0171-apply-patch-then-resumed.jsonl", "0169-apply-patch.jsonl"])
def test_real_file_change_records_are_read(name):
    path = SAMPLES / name
    first_turn_end = _offset_of(path, '"task_started"', 2) if "resumed" in name else None
    changes = session_changes(read_turn_lines(path, 0, first_turn_end))
    assert _touched(changes) == {
        f"{REAL}/a.txt": (Action.UPDATED, None, None, Status.APPLIED),
        f"{REAL}/sub/new.txt": (Action.ADDED, None, None, Status.APPLIED),
    }
    assert changes.cwd == REAL and changes.git_commit and changes.commands == 0
    update = changes.files[f"{REAL}/a.txt"].ops[0]
    assert update.diff == "@@ -1 +1 @@\n-old line\n+new line\n"
    assert changes.files[f"{REAL}/sub/new.txt"].ops[0].diff == "+hello\n+world\n"


def test_a_follow_ups_turn_is_read_alone():
    path = SAMPLES / "0171-apply-patch-then-resumed.jsonl"
    changes = session_changes(read_turn_lines(path, _offset_of(path, '"task_started"', 2)), default_cwd=REAL)
    # Its patch ran through the shell tool (apply_patch <<'EOF'), which Codex intercepts.
    assert _touched(changes) == {
        f"{REAL}/b.txt": (Action.MOVED, f"{REAL}/moved/b.txt", None, Status.APPLIED),
        f"{REAL}/moved/b.txt": (Action.ADDED, None, f"{REAL}/b.txt", Status.APPLIED),
        f"{REAL}/c.txt": (Action.DELETED, None, None, Status.APPLIED),
    }
    assert changes.files[f"{REAL}/c.txt"].ops[0].diff == "-sea\n"


def test_without_the_records_the_calls_themselves_are_read():
    """Releases that kept only the transcript: the patch text of each call, applied when its
    output says so (custom tool call and shell heredoc alike)."""
    path = SAMPLES / "0171-apply-patch-then-resumed.jsonl"
    lines = [line for line in path.open("rb") if b'"FileChange"' not in line]
    assert _touched(session_changes(lines)) == _touched(session_changes(read_turn_lines(path)))


def test_a_patch_codex_refused_changes_nothing():
    changes = session_changes(read_turn_lines(SAMPLES / "0171-apply-patch-failed.jsonl"))
    assert changes.files == {} and changes.refused_patches == 1


def test_a_worktree_session_says_where_it_ran():
    changes = session_changes(read_turn_lines(SAMPLES / "0171-worktree.jsonl"))
    wt = "/home/operator/.codex/worktrees/04f4/project"
    assert changes.cwd == wt and list(changes.files) == [f"{wt}/wt.txt"]
    assert len(changes.git_commit) == 40


def test_event_forms_of_other_releases():
    """`patch_apply_end` with `changes` externally tagged, as serde wrote FileChange before it
    took a `type` tag; a failed one; and lines of every odd shape, skipped."""
    lines = [
        json.dumps({"type": "event_msg", "payload": {"type": "patch_apply_end", "call_id": "c1", "stdout": "", "stderr": "",
                    "success": True, "changes": {"/r/x.py": {"update": {"unified_diff": "@@ -1 +1 @@\n-a\n+b\n", "move_path": None}},
                                                 "/r/y.py": {"add": {"content": "y\n"}}, "/r/z.py": "delete"}}}),
        json.dumps({"type": "event_msg", "payload": {"type": "patch_apply_end", "call_id": "c2", "stdout": "", "stderr": "boom",
                    "success": False, "changes": {"/r/w.py": {"type": "update", "unified_diff": "", "move_path": None}}}}),
        "not json {", "[1, 2]", json.dumps({"type": "event_msg", "payload": {"type": "item_completed", "item": {"type": "FileChange", "changes": 5}}}),
        json.dumps({"type": "response_item", "payload": {"type": "custom_tool_call", "name": "apply_patch", "call_id": 7, "input": None}}),
        json.dumps({"type": "event_msg", "payload": {"type": "patch_apply_end", "changes": {"/r/v": {"update": 3}}}}),
    ]
    changes = session_changes(lines)
    assert _touched(changes) == {
        "/r/x.py": (Action.UPDATED, None, None, Status.APPLIED),
        "/r/y.py": (Action.ADDED, None, None, Status.APPLIED),
        "/r/z.py": (Action.DELETED, None, None, Status.APPLIED),
        "/r/w.py": (Action.UPDATED, None, None, Status.FAILED),
        "/r/v": (Action.UPDATED, None, None, Status.FAILED),  # no `success`: not counted as applied
    }
    assert changes.failed_patches == 2


# ---- jobs in Git -------------------------------------------------------------------------


def test_diff_in_git_shows_the_edited_file_and_the_new_one(sandbox, tmp_path):
    repo = make_repo(tmp_path / "repo", {"a.txt": "old line\nkeep\n", "c.txt": "sea\n"})
    job = run_job(sandbox, "PATCH a.txt new line\nPATCH sub/new.txt hello", cwd=repo)

    text = sandbox.cli("diff", job.id)
    assert text.returncode == 0, text.stderr
    out = text.stdout
    assert f"Git work tree {repo}" in out and "as it was when the job started" in out
    assert "M a.txt\n" in out and "A sub/new.txt\n" in out and "c.txt" not in out
    assert "-old line\n-keep\n+new line\n" in out
    assert "new file mode 100644" in out and "+++ b/sub/new.txt\n@@ -0,0 +1 @@\n+hello\n" in out
    assert "\x1b" not in out  # a pipe: no colour

    stat = sandbox.cli("diff", "--stat", job.id).stdout
    assert " M a.txt       | 3 +--\n" in stat and " A sub/new.txt | 1 +\n" in stat
    assert "2 files changed, 2 insertions(+), 2 deletions(-)" in stat and "@@" not in stat

    data = diff_json(sandbox, job)
    assert data["git_root"] == str(repo) and data["worktree"] is None and len(data["base"]) == 40
    files = by_display(data)
    assert files["a.txt"]["action"] == "updated" and files["a.txt"]["path"] == str(repo / "a.txt")
    assert files["sub/new.txt"]["action"] == "added" and files["sub/new.txt"]["exists"] is True
    assert {f["diff_source"] for f in data["files"]} == {"git"}
    assert (files["a.txt"]["insertions"], files["a.txt"]["deletions"]) == (1, 2)
    assert "+new line" in files["a.txt"]["diff"]
    assert "diff" not in diff_json(sandbox, job, "--stat")["files"][0]


def test_the_diff_is_against_the_state_before_the_job_and_leaves_the_index_alone(sandbox, tmp_path):
    """Uncommitted edits and untracked files from before the job are not the job's."""
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\ntwo\n", "b.txt": "bee\n"})
    (repo / "a.txt").write_text("one (mine, uncommitted)\ntwo\n")
    (repo / "notes.txt").write_text("my notes\n")
    (repo / "staged.txt").write_text("staged by me\n")
    git(repo, "add", "staged.txt")
    before_index = (repo / ".git" / "index").read_bytes()
    job = run_job(sandbox, "PATCH notes.txt my notes, edited by the job\nDELETE b.txt", cwd=repo)
    files = by_display(diff_json(sandbox, job))
    assert set(files) == {"notes.txt", "b.txt"}
    assert "-my notes\n+my notes, edited by the job\n" in files["notes.txt"]["diff"]
    assert files["notes.txt"]["action"] == "updated"
    assert files["b.txt"]["action"] == "deleted" and "deleted file mode" in files["b.txt"]["diff"]
    assert (repo / ".git" / "index").read_bytes() == before_index  # nothing staged in the user's index
    assert git(repo, "diff", "--cached", "--name-only") == "staged.txt\n"


def test_big_untracked_files_stay_out_of_the_start_snapshot(sandbox, tmp_path, monkeypatch):
    from codexdash import git_tree

    monkeypatch.setattr(git_tree, "SNAPSHOT_UNTRACKED_BYTES", 10)
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    (repo / "a.txt").write_text("a, changed\n")
    (repo / "big.bin").write_text("more than ten bytes\n")
    tree = git_tree.start_snapshot(str(repo))
    listing = git(repo, "ls-tree", "-r", tree)
    assert "a.txt" in listing and "big.bin" not in listing
    assert git(repo, "cat-file", "-p", f"{tree}:a.txt") == "a, changed\n"
    monkeypatch.setattr(git_tree, "SNAPSHOT_UNTRACKED_BYTES", 1000)
    assert "big.bin" in git(repo, "ls-tree", "-r", git_tree.start_snapshot(str(repo)))


def test_a_follow_up_shows_only_its_own_turn_and_the_parent_stops_where_it_began(sandbox, tmp_path):
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    parent = run_job(sandbox, "PATCH a.txt from the parent\nPATCH made.txt made by the parent", cwd=repo)
    follow = finished(sandbox, sandbox.engine.resume(parent, "PATCH made.txt changed by the follow-up\nPATCH b.txt b"))
    assert follow.status == JobStatus.COMPLETED

    mine = by_display(diff_json(sandbox, follow))
    assert set(mine) == {"made.txt", "b.txt"}
    assert "-made by the parent\n+changed by the follow-up\n" in mine["made.txt"]["diff"]
    assert mine["made.txt"]["action"] == "updated" and mine["b.txt"]["action"] == "added"

    data = diff_json(sandbox, parent)
    theirs = by_display(data)
    assert set(theirs) == {"a.txt", "made.txt"}
    assert "+made by the parent" in theirs["made.txt"]["diff"] and "follow-up" not in theirs["made.txt"]["diff"]
    assert data["until"] and follow.id in data["base_label"]


def test_the_scratch_index_is_a_copy_dated_as_the_original(tmp_path):
    """Git trusts a file whose size and time match its index entry unless the index is no
    older than the file ("racily clean"): a copy of the index dated now would hide a same-size
    edit made in the second of the last commit (seen with the real Codex)."""
    from codexdash.git_tree import ScratchIndex

    repo = make_repo(tmp_path / "repo", {"a.txt": "old line\n"})
    real = repo / ".git" / "index"
    os.utime(real, ns=(1_700_000_000_123_456_789, 1_700_000_000_123_456_789))
    with ScratchIndex(str(repo)) as index:
        assert os.stat(index.path).st_mtime_ns == real.stat().st_mtime_ns
        assert Path(index.path).read_bytes() == real.read_bytes()
    assert not os.path.exists(index.path)


def test_outside_git_the_files_are_listed_as_the_session_recorded_them(sandbox, tmp_path):
    work = tmp_path / "plain"
    work.mkdir()
    (work / "a.txt").write_text("old\n")
    (work / "gone.txt").write_text("bye\n")
    job = run_job(sandbox, "PATCH a.txt new\nPATCH fresh.txt hi\nDELETE gone.txt\nMOVE fresh.txt moved.txt", cwd=work)
    data = diff_json(sandbox, job)
    assert data["git_root"] is None and data["base"] is None
    files = by_display(data)
    assert {k: v["action"] for k, v in files.items()} == {
        "a.txt": "updated", "fresh.txt": "added and deleted", "gone.txt": "deleted", "moved.txt": "added"}
    assert files["moved.txt"]["moved_from"] == str(work / "fresh.txt")
    assert {f["diff_source"] for f in (files["a.txt"], files["gone.txt"])} == {"session"}
    assert "-old\n+new\n" in files["a.txt"]["diff"] and "-bye\n" in files["gone.txt"]["diff"]
    out = sandbox.cli("diff", job.id).stdout
    assert "(not a Git work tree)" in out and "as the session recorded each edit" in out
    assert "M a.txt\n" in out and "D gone.txt\n" in out and "A moved.txt (moved from fresh.txt)" in out
    stat = sandbox.cli("diff", "--stat", job.id).stdout
    assert " M a.txt " in stat and "files changed" in stat


HOSTILE_NAME = "e\x1b]0;pwned\x07\x1b[2Jvil\u202e.txt"
HOSTILE_TEXT = "\x1b[31mred\x1b[0m \x9b31m \u202edesrever\x07 \x1b]8;;http://x\x1b\\"


@pytest.mark.parametrize("in_git", [True, False])
def test_hostile_names_and_content_reach_the_terminal_inert(sandbox, tmp_path, in_git):
    work = make_repo(tmp_path / "repo", {"x": "x\n"}) if in_git else tmp_path / "plain"
    work.mkdir(exist_ok=True)
    job = run_job(sandbox, f"PATCH {HOSTILE_NAME} {HOSTILE_TEXT}", cwd=work)
    assert (work / HOSTILE_NAME).read_text() == HOSTILE_TEXT + "\n"
    for flags in ((), ("--stat",), ("--json",)):
        result = sandbox.cli("diff", *flags, job.id)
        assert result.returncode == 0, result.stderr
        for bad in ("\x1b", "\x07", "\x9b", "\u202e"):
            assert bad not in result.stdout, (flags, bad)
    data = json.loads(sandbox.cli("diff", "--json", job.id).stdout)
    assert data["files"][0]["path"] == str(work / HOSTILE_NAME)  # exact in JSON, escaped there
    assert HOSTILE_TEXT in data["files"][0]["diff"]
    shown = sandbox.cli("diff", job.id).stdout
    assert "^[[31mred" in shown and "<U+202E>" in shown


def test_colour_on_a_terminal_none_under_no_color(sandbox, tmp_path):
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    job = run_job(sandbox, "PATCH a.txt b", cwd=repo)

    def on_a_terminal(**env) -> str:
        master, slave = pty.openpty()
        proc = subprocess.Popen([sys.executable, "-m", "codexdash", "diff", job.id], env=sandbox.env(**env),
                                stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE)
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        os.close(master)
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
        return b"".join(chunks).decode()

    coloured = on_a_terminal()
    assert "\x1b[32m+b" in coloured and "\x1b[31m-a" in coloured
    assert "\x1b" not in on_a_terminal(NO_COLOR="1")


def test_a_closed_pipe_ends_quietly(sandbox, tmp_path):
    repo = make_repo(tmp_path / "repo", {"big.txt": "".join(f"line {i}\n" for i in range(20000))})
    job = run_job(sandbox, "PATCH big.txt all gone", cwd=repo)
    proc = subprocess.Popen([sys.executable, "-m", "codexdash", "diff", job.id], env=sandbox.env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().startswith(b"\xe2\x94\x80\xe2\x94\x80 job")  # "── job"
    proc.stdout.close()
    assert proc.wait(timeout=60) == 0
    assert proc.stderr.read() == b""


def test_unknown_job_and_job_without_session(sandbox):
    one_line_error(sandbox.cli("diff", "nosuchjob"), 2, "no job")
    job_id = json.loads(sandbox.cli("start", "--json", "ECHO x", "--", "--bogus").stdout)["id"]
    wait_for(lambda: (j := Job.get_by_id(job_id)) and sandbox.engine.refresh([j]) and not j.is_live,
             message="the rejected job to end")
    one_line_error(sandbox.cli("diff", job_id), 1, "has no session file")


def test_commands_are_counted_not_guessed(sandbox, tmp_path):
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    job = run_job(sandbox, "PATCH a.txt b\nSLEEP 0.1", cwd=repo)
    data = diff_json(sandbox, job)
    assert data["commands"] == 1 and [f["display"] for f in data["files"]] == ["a.txt"]
    assert any("ran 1 command" in n for n in data["notes"])


# ---- --worktree ------------------------------------------------------------------------------


def test_start_worktree_runs_in_a_new_worktree_and_the_diff_runs_there(sandbox, tmp_path):
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    result = sandbox.cli("start", "--json", "--worktree", "--cwd", str(repo), "PATCH a.txt in the worktree\nPATCH w.txt w")
    assert result.returncode == 0, result.stderr
    job = finished(sandbox, Job.get_by_id(json.loads(result.stdout)["id"]))
    assert job.status == JobStatus.COMPLETED, job.detail
    wt = Path(job.worktree)
    assert wt.parent.parent == sandbox.codex_home / "worktrees" and wt.name == "repo"
    assert "--worktree" in job.argv_list and job.cwd == str(repo)
    assert git(repo, "status", "--porcelain") == "" and (repo / "a.txt").read_text() == "a\n"  # the repo untouched
    shown = json.loads(sandbox.cli("show", "--json", job.id).stdout)
    assert shown["worktree"] == str(wt)
    assert f"worktree: {wt}" in sandbox.cli("show", job.id).stdout

    (wt / "by-a-command.txt").write_text("made by a command\n")  # as a tool command would
    data = diff_json(sandbox, job)
    assert data["worktree"] == str(wt) and data["git_root"] == str(wt)
    assert "the commit its worktree was made from" in data["base_label"]
    files = by_display(data)
    assert set(files) == {"a.txt", "w.txt", "by-a-command.txt"}
    assert files["by-a-command.txt"]["source"] == "worktree" and files["by-a-command.txt"]["action"] == "added"
    assert "+in the worktree" in files["a.txt"]["diff"]

    follow = finished(sandbox, sandbox.engine.resume(job, "PATCH w.txt w, again"))
    assert follow.status == JobStatus.COMPLETED, follow.detail
    assert follow.cwd == str(wt) and follow.worktree == str(wt) and "--worktree" not in follow.argv_list
    assert set(by_display(diff_json(sandbox, follow))) == {"w.txt"}

    again = finished(sandbox, sandbox.engine.retry(job))
    assert again.status == JobStatus.COMPLETED and again.worktree and again.worktree != job.worktree


def test_worktree_outside_git_is_refused_at_start(sandbox, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    one_line_error(sandbox.cli("start", "--worktree", "--cwd", str(plain), "ECHO x"), 2, "--worktree needs a Git work tree")
    one_line_error(sandbox.cli("start", "--cwd", str(plain), "ECHO x", "--", "--worktree"), 2, "needs a Git work tree")
    assert Job.select().count() == 0


def test_the_store_gains_the_columns(tmp_path):
    path = tmp_path / "jobs.db"
    open_store(path).close()
    con = sqlite3.connect(path)
    con.execute("ALTER TABLE job DROP COLUMN worktree")
    con.execute("ALTER TABLE job DROP COLUMN git_base")
    con.execute("UPDATE schemainfo SET value = '2' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    store = open_store(path)
    try:
        columns = {c.name for c in store.db.get_columns("job")}
        assert {"worktree", "git_base"} <= columns
    finally:
        store.close()


def test_job_changes_gives_lines_ready_to_render(sandbox, tmp_path):
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    job = run_job(sandbox, "PATCH a.txt b", cwd=repo)
    changes = job_changes(sandbox.engine, job)
    styles = {line.style for line in changes.lines()}
    assert {"dim", "command", "prompt", "agent", "ok", "error"} <= styles
    assert [line.text for line in changes.lines(stat=True)][-1].startswith(" 1 file changed")
