"""`codexdash demo`: the dashboard on a sandbox, with jobs of a fake agent that behave like Codex.

Everything lives in a temporary directory (CODEX_HOME, the job database, the fake `codex`),
removed on exit with the demo's jobs unless --keep. Nothing touches the user's own Codex home
or job database.
"""

from __future__ import annotations

import shutil
import time
import tempfile
from dataclasses import dataclass
from pathlib import Path

from codexdash.config import Settings
from codexdash.fake_codex import install
from codexdash.jobs import JobEngine
from codexdash.starting import StartRequest
from codexdash.store import Store, open_store

# What the fake agent does is read from words in the prompt (see codexdash.fake_codex):
# (name, working directory under the sandbox, prompt, extra Codex arguments).
DEMO_JOBS = [
    ("parser refactor", "api", "ECHO Refactored the session parser; all 42 tests pass.", []),
    ("model outage", "api", "FAIL to reach the model: this one ends with an error", []),
    ("rejected flag", "web", "ECHO never runs: Codex refuses an argument it does not know", ["--no-such-flag"]),
    ("CI build", "web", "please SLEEP 4 then ECHO The build is green.", []),
    ("long migration", "infra", "STREAM 900 a long task that writes steadily: watch the pane follow it", []),
    ("stubborn agent", "infra", "IGNORE_SIGNALS STREAM 900 ignores SIGINT and SIGTERM: kill it to see the escalation", []),
    ("escaping child", "web", "ESCAPE 900 then SLEEP 900: its child leaves the process group; the kill sweeps it", []),
]
FOLLOW_UP = "ECHO Also updated the changelog, as asked in this follow-up."


@dataclass
class DemoSandbox:
    root: Path
    settings: Settings
    store: Store
    engine: JobEngine

    def env_line(self) -> str:
        s = self.settings
        return f"CODEX_HOME={s.codex_home} CODEXDASH_DB={s.db_path} CODEXDASH_CODEX={s.codex_command[0]} codexdash"


def create_demo(root: Path | None = None) -> DemoSandbox:
    root = Path(root or tempfile.mkdtemp(prefix="codexdash-demo-"))
    (root / "codex-home").mkdir(parents=True, exist_ok=True)
    (root / "work").mkdir(exist_ok=True)
    codex = install(root / "bin")
    settings = Settings(codex_home=root / "codex-home", db_path=root / "jobs.db", codex_command=(str(codex),),
                        interrupt_grace=2.0, terminate_grace=2.0)
    store = open_store(settings.db_path)
    engine = JobEngine(settings, store)
    first = None
    for name, work, prompt, extra in DEMO_JOBS:
        (root / "work" / work).mkdir(exist_ok=True)
        job = engine.start(StartRequest(prompt=prompt, cwd=str(root / "work" / work), model="fake-model", name=name,
                                        extra_args=extra))
        first = first or job
    _follow_up(engine, first)
    return DemoSandbox(root, settings, store, engine)


def _follow_up(engine: JobEngine, parent) -> None:
    """A follow-up of the first job once it has ended (a moment: it only answers)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        engine.reconcile(parent)
        if not parent.is_live:
            engine.resume(parent, FOLLOW_UP)
            return
        time.sleep(0.05)


def stop_demo_jobs(demo: DemoSandbox) -> None:
    """Ends every job of the sandbox (verified like any kill), for a clean exit."""
    from codexdash.errors import CodexdashError
    from codexdash.kill import kill_job

    for view in demo.engine.refresh():
        if view.job.is_live:
            try:
                kill_job(demo.engine, view.job, force=True)
            except CodexdashError:
                pass


def run_demo(keep: bool = False) -> int:
    from codexdash.ui.app import CodexdashApp

    demo = create_demo()
    try:
        app = CodexdashApp(demo.engine, title="codexdash demo", cwd=str(demo.root / "work"))
        app.run()
    finally:
        if keep:
            print(f"codexdash demo: the sandbox is kept in {demo.root}; its jobs run on. To open it again:\n  {demo.env_line()}")
        else:
            stop_demo_jobs(demo)
            demo.store.close()
            shutil.rmtree(demo.root, ignore_errors=True)
            print("codexdash demo: sandbox removed.")
    return 0
