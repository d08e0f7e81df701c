"""Makes assets/screenshot.svg: the dashboard on a day's work, headless, 140x36.

Named jobs in several projects, in every common state: running and streaming, completed (one
with a follow-up), failed, killed, a Codex session started by hand; the ones that ended while
the dashboard watched are marked as not looked at yet. All of it in a sandbox with the fake
agent, removed afterwards. Run: python assets/make_screenshot.py
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from codexdash.config import Settings
from codexdash.fake_codex import install
from codexdash.jobs import JobEngine
from codexdash.starting import StartRequest
from codexdash.kill import kill_job
from codexdash.store import JobStatus, open_store
from codexdash.ui import saved_state
from codexdash.ui.app import CodexdashApp

OUT = Path(__file__).resolve().parent / "screenshot.svg"
SIZE = (140, 36)

# name, project, prompt (the fake agent acts on the words in capitals)
DAY = [
    ("fix flaky retry test", "api", "ECHO Fixed the flaky retry test: the backoff now takes the injected clock; 312 tests pass."),
    ("nightly dependency bump", "web", "please SLEEP 3 then ECHO Bumped 14 packages; the build is green."),
    ("migrate users table", "infra", "FAIL to reach the model: stream disconnected before completion"),
    ("load test checkout", "web", "IGNORE_SIGNALS STREAM 900 run the checkout load test against staging"),
    ("write release notes", "docs", "STREAM 900 write the release notes for 2.4 from the merged pull requests"),
    ("refactor session parser", "api", "STREAM 900 refactor the session parser into one follower and keep the tests green"),
]


async def until(pilot, condition, what: str, timeout: float = 30.0) -> None:
    for _ in range(int(timeout / 0.1)):
        if condition():
            return
        await pilot.pause(0.1)
    raise SystemExit(f"the screenshot's jobs did not get there: {what}")


async def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="codexdash-shot-"))
    try:
        (root / "codex-home").mkdir()
        codex = install(root / "bin")
        settings = Settings(codex_home=root / "codex-home", db_path=root / "jobs.db", codex_command=(str(codex),),
                            interrupt_grace=1.0, terminate_grace=1.0, notify_terminal=False)
        store = open_store(settings.db_path)
        engine = JobEngine(settings, store)
        jobs = {}
        for name, project, prompt in DAY:
            (root / "work" / project).mkdir(parents=True, exist_ok=True)
            jobs[name] = engine.start(StartRequest(prompt=prompt, cwd=str(root / "work" / project), model="gpt-5-codex",
                                                   name=name))
        # A session an operator started by hand in another window: shown read-only.
        (root / "work" / "scratch").mkdir()
        env = {**os.environ, "CODEX_HOME": str(settings.codex_home)}
        env.pop("CODEXDASH_JOB", None)
        subprocess.run([str(codex), "exec", "--skip-git-repo-check", "--", "ECHO what does the retry budget default to?"],
                       cwd=root / "work" / "scratch", env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60, check=True)
        # The last dashboard closed an hour ago: what ended since is marked as not looked at yet.
        state = root / "dashboard.json"
        saved_state.save(state, saved_state.SavedState(closed_at=time.time() - 3600))
        app = CodexdashApp(engine, cwd=str(root / "work"), host="buildbox", state_path=state)
        async with app.run_test(size=SIZE) as pilot:
            status = lambda name: engine.refresh([jobs[name]])[0].job.status  # noqa: E731
            await until(pilot, lambda: status("fix flaky retry test") == JobStatus.COMPLETED, "first done")
            follow = engine.resume(jobs["fix flaky retry test"], "ECHO Also covered the jitter path; 318 tests pass.")
            await until(pilot, lambda: engine.refresh([follow])[0].job.status == JobStatus.COMPLETED, "follow-up done")
            kill_job(engine, jobs["load test checkout"], force=True)
            await until(pilot, lambda: status("nightly dependency bump") == JobStatus.COMPLETED, "bump done")
            await until(pilot, lambda: app.table.row_count == len(DAY) + 2 and len(app.attention.unseen) >= 3,
                        f"all rows ({app.table.row_count}) and marks ({len(app.attention.unseen)})")
            refactor = jobs["refactor session parser"].id
            app.table.move_cursor(row=app.table._order.index(refactor))
            await until(pilot, lambda: app.pane.job_id == refactor and len(app.pane.log_view.text.splitlines()) > 8, "the pane")
            await pilot.pause(1.0)
            app.save_screenshot(filename=OUT.name, path=str(OUT.parent))
        for job in engine.refresh():
            if job.job.is_live:
                kill_job(engine, job.job, force=True)
        store.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    asyncio.run(main())
