"""A job's changes and `--worktree` with the real Codex CLI, offline against the mock model server.

The mock makes the model call `apply_patch` with the patch given in the prompt; Codex offers
that tool to the models it knows, hence `--model gpt-5.5`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codexdash.store import Job, JobStatus
from tests.test_changes import by_display, diff_json, git, make_repo
from tests.test_real_codex import codex_box, finished, mock_server, real_codex  # noqa: F401 - fixtures

pytestmark = pytest.mark.real_codex

MODEL, SANDBOX = "gpt-5.5", "danger-full-access"
FIRST = ("PATCH one\n*** Begin Patch\n*** Update File: a.txt\n@@\n-old line\n+new line\n"
         "*** Add File: sub/new.txt\n+hello\n*** End Patch\n")
SECOND = ("VIA_SHELL PATCH two\n*** Begin Patch\n*** Update File: b.txt\n*** Move to: moved/b.txt\n@@\n-bee\n+bee moved\n"
          "*** End Patch\n")


def test_real_codex_edits_are_diffed_per_turn(codex_box, tmp_path):  # noqa: F811
    repo = make_repo(tmp_path / "repo", {"a.txt": "old line\n", "b.txt": "bee\n"})
    job = finished(codex_box, codex_box.start(FIRST, cwd=repo, model=MODEL, sandbox=SANDBOX))
    assert job.status == JobStatus.COMPLETED, job.detail
    assert (repo / "sub" / "new.txt").read_text() == "hello\n"
    follow = finished(codex_box, codex_box.engine.resume(job, SECOND))
    assert follow.status == JobStatus.COMPLETED, follow.detail

    first = by_display(diff_json(codex_box, job))
    assert set(first) == {"a.txt", "sub/new.txt"}
    assert "-old line\n+new line\n" in first["a.txt"]["diff"] and first["sub/new.txt"]["action"] == "added"
    second = by_display(diff_json(codex_box, follow))
    assert {k: v["action"] for k, v in second.items()} == {"b.txt": "moved", "moved/b.txt": "added"}
    assert second["b.txt"]["moved_to"] == str(repo / "moved" / "b.txt")
    assert "+bee moved" in second["moved/b.txt"]["diff"]


def test_real_codex_worktree(codex_box, tmp_path):  # noqa: F811
    repo = make_repo(tmp_path / "repo", {"a.txt": "old line\n", "b.txt": "bee\n"})
    result = codex_box.cli("start", "--json", "--worktree", "--cwd", str(repo), "--model", MODEL, "--sandbox", SANDBOX, FIRST)
    assert result.returncode == 0, result.stderr
    job = finished(codex_box, Job.get_by_id(json.loads(result.stdout)["id"]))
    assert job.status == JobStatus.COMPLETED, job.detail
    wt = Path(codex_box.engine.worktree(job))  # learnt from the session's first line, then kept
    assert Job.get_by_id(job.id).worktree == str(wt)
    assert wt.is_dir() and wt.parent.parent == codex_box.codex_home / "worktrees"
    assert git(repo, "status", "--porcelain") == ""  # the edits went to the worktree
    data = diff_json(codex_box, job)
    assert data["git_root"] == str(wt) and "worktree was made from" in data["base_label"]
    assert set(by_display(data)) == {"a.txt", "sub/new.txt"}
    follow = finished(codex_box, codex_box.engine.resume(job, SECOND))
    assert follow.status == JobStatus.COMPLETED, follow.detail
    assert follow.cwd == str(wt) and (wt / "moved" / "b.txt").exists() and (repo / "b.txt").exists()
