"""Shared fixtures: a sandbox with its own CODEX_HOME, job database and fake `codex`."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from codexdash.config import Settings
from codexdash.fake_codex import install
from codexdash.jobs import JobEngine
from codexdash.starting import StartRequest
from codexdash.procs import process_if_same
from codexdash.store import Job, open_store

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLES = FIXTURES / "sessions"


class Deadline:
    """The one rule of every wait in the tests: a condition, and a failure when time is up."""

    def __init__(self, timeout: float, message: str) -> None:
        self.timeout, self.message = timeout, message
        self.at = time.monotonic() + timeout

    def check(self) -> None:
        if time.monotonic() >= self.at:
            raise AssertionError(f"timed out after {self.timeout} s waiting for {self.message}")


def wait_for(condition, timeout: float = 15.0, interval: float = 0.02, message: str = "condition"):
    """Polls `condition` until it returns something truthy; fails the test at the deadline."""
    deadline = Deadline(timeout, message)
    while not (value := condition()):
        deadline.check()
        time.sleep(interval)
    return value


@dataclass
class Sandbox:
    root: Path
    codex_home: Path
    db_path: Path
    codex: Path
    settings: Settings
    engine: JobEngine

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(CODEX_HOME=str(self.codex_home), CODEXDASH_DB=str(self.db_path), CODEXDASH_CODEX=str(self.codex),
                   CODEXDASH_CONFIG=str(self.root / "config.toml"))
        env.update(extra)
        return env

    def start(self, prompt: str, **kwargs) -> Job:
        return self.engine.start(StartRequest(prompt=prompt, cwd=str(kwargs.pop("cwd", self.root)), **kwargs))

    def cli(self, *args: str, input: str | None = None, timeout: float = 60, **env: str):
        import subprocess

        return subprocess.run(
            [sys.executable, "-m", "codexdash", *args], env=self.env(**env), cwd=self.root,
            capture_output=True, text=True, input=input, timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )

    def job(self, job_id: str) -> Job:
        return Job.get_by_id(job_id)


def end_marked_processes(markers: set[str]) -> None:
    """Test hygiene: nothing a test started outlives it."""
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("CODEXDASH_JOB") in markers:
                proc.send_signal(signal.SIGKILL)
        except (psutil.Error, OSError):
            continue


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    home = tmp_path / "codex-home"
    home.mkdir()
    db = tmp_path / "data" / "jobs.db"
    codex = install(tmp_path / "bin")
    # The engine of the tests is looked at by the tests themselves: no watcher beside it.
    settings = Settings(codex_home=home, db_path=db, codex_command=(str(codex),), interrupt_grace=2.0, terminate_grace=2.0,
                        watch=False)
    for key, value in (("CODEX_HOME", home), ("CODEXDASH_DB", db), ("CODEXDASH_CODEX", codex),
                       ("CODEXDASH_CONFIG", tmp_path / "config.toml"), ("XDG_STATE_HOME", tmp_path / "state")):
        monkeypatch.setenv(key, str(value))
    store = open_store(db)
    engine = JobEngine(settings, store)
    box = Sandbox(tmp_path, home, db, codex, settings, engine)
    yield box
    try:
        jobs = list(Job.select())
    except Exception:
        jobs = []
    end_marked_processes({j.marker for j in jobs})
    for j in jobs:  # a job that exec'd away from its marker still has its recorded identity
        proc = process_if_same(j.pid, j.pid_start_time)
        if proc is not None:
            proc.kill()
    for job in list(engine._children.values()):
        try:
            job.wait(timeout=5)
        except Exception:
            pass
    store.close()


@pytest.fixture
def runtime_dir(monkeypatch):
    """A short XDG_RUNTIME_DIR: ssh's control sockets need short paths (at most 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="cdxrun-", dir="/tmp"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(path))
    yield path
    shutil.rmtree(path, ignore_errors=True)
