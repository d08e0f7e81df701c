"""Start-up: a cold `codexdash list` (whole process) beside `ps -e`, and the dashboard from
process start to its first frame with 100 jobs (headless)."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

from common import Figure, ROOT, env_for, sandbox

FIRST_FRAME = """
import sys, time
from codexdash.config import load_settings
from codexdash.jobs import JobEngine
from codexdash.store import open_store
from codexdash.ui.app import CodexdashApp

class Timed(CodexdashApp):
    def on_jobs_refreshed(self, message):
        super().on_jobs_refreshed(message)
        if self.table.row_count:  # the frame with the jobs: printed once it is drawn
            # perf_counter is CLOCK_MONOTONIC: the parent compares it with its own, taken at spawn.
            self.call_after_refresh(lambda: (print(time.perf_counter(), self.table.row_count), self.exit()))


settings = load_settings()
Timed(JobEngine(settings, open_store(settings.db_path)), host="bench").run(headless=True, size=(140, 36))
"""


def add_jobs(box, n: int) -> None:
    from codexdash.store import Job, JobStatus

    samples = sorted((ROOT / "tests" / "fixtures" / "sessions").glob("*.jsonl"))
    now = time.time()
    with box["store"].write():
        for i in range(n):
            Job.create(id=f"job{i:07d}", marker=f"cdx-{i}", status=JobStatus.COMPLETED, argv=json.dumps(["codex", "exec", "--", f"task {i}"]),
                       cwd="/home/operator/project", prompt=f"task {i}: fix the tests", model="mock-model", created_at=now - i,
                       started_at=now - i, ended_at=now - i + 5, exit_code=0, session_file=str(samples[i % len(samples)]), tokens=1000 + i)


def run() -> list[Figure]:
    box = sandbox("startup")
    add_jobs(box, 100)
    env = env_for(box)
    cli, ps = [], []
    for _ in range(10):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "codexdash", "list"], env=env, stdout=subprocess.DEVNULL, check=True)
        cli.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        subprocess.run(["ps", "-e"], stdout=subprocess.DEVNULL, check=True)
        ps.append((time.perf_counter() - t) * 1000)
    frames = []
    for _ in range(5):
        spawned = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", FIRST_FRAME], env=env, capture_output=True, text=True, cwd=ROOT, timeout=60)
        if out.returncode != 0 or not out.stdout.strip():
            raise RuntimeError(f"first-frame probe failed: {out.stderr[-2000:]}")
        frames.append((float(out.stdout.split()[0]) - spawned) * 1000)
    cli_ms, ps_ms, frame_ms = statistics.median(cli), statistics.median(ps), statistics.median(frames)
    return [
        Figure("cold start, `codexdash list` (100 jobs), whole process", f"{cli_ms:.0f} ms", "≤ 70 ms", cli_ms <= 70,
               reference=f"ps -e: {ps_ms:.1f} ms", detail={"ms": cli_ms, "ps_ms": ps_ms}),
        Figure("dashboard start → first frame, 100 jobs", f"{frame_ms:.0f} ms", "≤ 700 ms", frame_ms <= 700, detail={"ms": frame_ms}),
    ]


if __name__ == "__main__":
    from common import report

    report(run())
