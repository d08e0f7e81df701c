"""Makes assets/screenshot-boxes.svg: one dashboard over three boxes, headless, 140x36.

This box runs two jobs; `buildbox` (reached by ssh) runs three, one of them followed in the
pane; `gpu-2` answered once and then went away: its rows are greyed, with the reason and the
time of the last good look in the status line. Each box is a sandbox of its own (store,
CODEX_HOME, the fake agent), reached through the dashboard's real ssh path: `ssh` here is a
stand-in that runs the box's codexdash in that sandbox (or fails as ssh fails for gpu-2 once it
is "down"), so the rows and the session cross as the same JSON as from a real box. Everything
is removed afterwards.

Run: python assets/make_screenshot_boxes.py [WIDTHxHEIGHT] [OUT.svg]
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from codexdash.config import Settings
from codexdash.fake_codex import install
from codexdash.jobs import JobEngine
from codexdash.starting import StartRequest
from codexdash.kill import kill_job
from codexdash.store import open_store
from codexdash.ui.app import CodexdashApp

OUT = Path(__file__).resolve().parent / "screenshot-boxes.svg"
SIZE = (140, 36)

HERE = [
    ("fix flaky retry test", "api", "ECHO Fixed the flaky retry test: the backoff now takes the injected clock."),
    ("write release notes", "docs", "STREAM 900 write the release notes for 2.4 from the merged pull requests"),
]
BOXES = {
    "buildbox": [
        ("nightly dependency bump", "web", "ECHO Bumped 14 packages; the build is green."),
        ("migrate users table", "infra", "FAIL to reach the model: stream disconnected before completion"),
        ("refactor session parser", "api", "STREAM 900 refactor the session parser into one follower and keep the tests green"),
    ],
    "gpu-2": [
        ("train tokenizer", "ml", "STREAM 900 train the tokenizer on the new corpus and report the loss"),
        ("eval checkpoint 41", "ml", "ECHO Checkpoint 41: 71.2% on the held-out set."),
    ],
}

# The stand-in `ssh`: `-G` (what the operator's configuration says) answers nothing; a command
# for a box runs that box's codexdash in its sandbox; gpu-2 fails as ssh does once it is down.
FAKE_SSH = """#!/bin/sh
for a; do [ "$a" = -G ] && exit 0; done
for a; do host=$prev; prev=$a; done
remote=$a
if [ "$host" = gpu-2 ] && [ -e {down} ]; then
  echo "ssh: connect to host gpu-2 port 22: No route to host" >&2; exit 255
fi
cd {root}/$host/work && exec env CODEXDASH_DB={root}/$host/jobs.db CODEX_HOME={root}/$host/codex-home \\
  CODEXDASH_CODEX={codex} CODEXDASH_CONFIG={root}/$host/config.toml CODEXDASH_HOSTS= sh -c "$remote"
"""


async def until(pilot, condition, what: str, timeout: float = 45.0) -> None:
    for _ in range(int(timeout / 0.1)):
        if condition():
            return
        await pilot.pause(0.1)
    raise SystemExit(f"the screenshot's jobs did not get there: {what}")


def box_cli(root: Path, codex: Path, host: str, *args: str, input: str | None = None) -> str:
    env = {**os.environ, "CODEXDASH_DB": str(root / host / "jobs.db"), "CODEX_HOME": str(root / host / "codex-home"),
           "CODEXDASH_CODEX": str(codex), "CODEXDASH_CONFIG": str(root / host / "config.toml"), "CODEXDASH_HOSTS": ""}
    env.pop("CODEXDASH_JOB", None)
    done = subprocess.run([sys.executable, "-m", "codexdash", *args], env=env, cwd=root / host / "work", input=input,
                          capture_output=True, text=True, timeout=60)
    return done.stdout


async def main(size: tuple[int, int], out: Path) -> None:
    root = Path(tempfile.mkdtemp(prefix="cdxshot-", dir="/tmp"))  # short: ssh control sockets live under it
    try:
        codex = install(root / "bin")
        for host, jobs in BOXES.items():
            (root / host / "codex-home").mkdir(parents=True)
            for _name, project, _prompt in jobs:
                (root / host / "work" / project).mkdir(parents=True, exist_ok=True)
            for name, project, prompt in jobs:
                box_cli(root, codex, host, "start", "--name", name, "--model", "gpt-5-codex", "--cwd",
                        str(root / host / "work" / project), "--json", prompt)
        ssh = root / "ssh"
        ssh.write_text(FAKE_SSH.format(root=shlex.quote(str(root)), codex=shlex.quote(str(codex)),
                                       down=shlex.quote(str(root / "gpu-2-down"))))
        ssh.chmod(0o755)
        (root / "run").mkdir(mode=0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(root / "run")
        (root / "here" / "codex-home").mkdir(parents=True)
        settings = Settings(codex_home=root / "here" / "codex-home", db_path=root / "here" / "jobs.db",
                            codex_command=(str(codex),), interrupt_grace=1.0, terminate_grace=1.0, notify_terminal=False,
                            hosts=tuple(BOXES), ssh_command=(str(ssh),), remote_command=f"{sys.executable} -m codexdash")
        store = open_store(settings.db_path)
        engine = JobEngine(settings, store)
        for name, project, prompt in HERE:
            (root / "here" / "work" / project).mkdir(parents=True, exist_ok=True)
            engine.start(StartRequest(prompt=prompt, cwd=str(root / "here" / "work" / project), model="gpt-5-codex", name=name))
        app = CodexdashApp(engine, cwd=str(root / "here" / "work"), host="laptop", state_path=root / "dashboard.json")
        async with app.run_test(size=size) as pilot:
            await until(pilot, lambda: all(app.looks[h].last_good for h in BOXES), "every box answered")
            rows = lambda: app.table.rows_for(app.shown_views())  # noqa: E731
            await until(pilot, lambda: len(rows()) == len(HERE) + sum(map(len, BOXES.values())), "every row")
            await until(pilot, lambda: sum(r.job.status == "completed" for r in rows()) == 3, "the short jobs done")
            (root / "gpu-2-down").touch()  # gpu-2 goes away: its watch's connection with it
            if (watcher := app.looks["gpu-2"].watcher) is not None:
                watcher.close()
            app.look_again("gpu-2")
            await until(pilot, lambda: app.looks["gpu-2"].error, "gpu-2 greyed")
            app.screen.query("Toast").remove()  # the toasts are news of the moment, not the picture
            followed = next(r.job.id for r in rows() if r.job.name == "refactor session parser")
            app.table.select_soon(followed)
            app._show_table()
            await until(pilot, lambda: app.pane.job_id == followed and len(app.pane.log_view.text.splitlines()) > 8, "the pane")
            await pilot.pause(1.0)
            app.screen.query("Toast").remove()
            await pilot.pause(0.2)
            app.save_screenshot(filename=out.name, path=str(out.parent))
        for view in engine.refresh():
            if view.job.is_live:
                kill_job(engine, view.job, force=True)
        store.close()
        for host in BOXES:
            for job in json.loads(box_cli(root, codex, host, "list", "--json") or "[]"):
                if job["status"] in ("running", "starting"):
                    box_cli(root, codex, host, "kill", job["id"], "--yes", "--force", "--json")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    size = tuple(int(n) for n in sys.argv[1].split("x")) if len(sys.argv) > 1 else SIZE
    asyncio.run(main(size, Path(sys.argv[2]).resolve() if len(sys.argv) > 2 else OUT))
