"""The dashboard's cost during its jobs' first minute, when every live row's uptime ticks each
second: 50 jobs started together, the dashboard (headless, whole process) measured from 5 s to
60 s after they started, beside `top -b -d 1` watching the same machine over the same window."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil

from common import Figure, ROOT, env_for, sandbox

JOBS = 50
FROM, TO = 5.0, 60.0  # seconds after the jobs started

DASHBOARD = """
from codexdash.config import load_settings
from codexdash.jobs import JobEngine
from codexdash.store import open_store
from codexdash.ui.app import CodexdashApp
settings = load_settings()
CodexdashApp(JobEngine(settings, open_store(settings.db_path)), host="bench").run(headless=True, size=(140, 36))
"""


def cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()  # the whole process, its ended threads included
    return t.user + t.system


def run() -> list[Figure]:
    from codexdash.jobs import StartRequest
    from codexdash.kill import kill_job

    box = sandbox("idle-first-minute")
    dash = subprocess.Popen([sys.executable, "-c", DASHBOARD], env=env_for(box), cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    jobs = []
    top = None
    try:
        d = psutil.Process(dash.pid)
        time.sleep(5)  # the dashboard's own start is not measured
        started = time.monotonic()
        jobs = [box["engine"].start(StartRequest(prompt=f"please SLEEP 900 job {i}", cwd=str(box["root"])))
                for i in range(JOBS)]
        time.sleep(max(started + FROM - time.monotonic(), 0))
        top = subprocess.Popen(["top", "-b", "-d", "1"], stdout=subprocess.DEVNULL)
        t = psutil.Process(top.pid)
        t0, c0, top0 = time.monotonic(), cpu_seconds(d), cpu_seconds(t)
        time.sleep(max(started + TO - time.monotonic(), 0))
        wall = time.monotonic() - t0
        cpu = 100 * (cpu_seconds(d) - c0) / wall
        top_cpu = 100 * (cpu_seconds(t) - top0) / wall
    finally:
        if top is not None:
            top.terminate()
            top.wait(timeout=10)
        dash.terminate()
        dash.wait(timeout=10)
        for job in jobs:
            try:
                kill_job(box["engine"], job, force=True)
            except Exception:
                pass
    return [Figure(f"dashboard, {JOBS} jobs in their first minute ({FROM:.0f}-{TO:.0f} s)", f"{cpu:.2f} % of a core",
                   "≤ top", cpu <= top_cpu, reference=f"top -b -d 1: {top_cpu:.2f} % of a core",
                   detail={"cpu_percent": cpu, "top_cpu_percent": top_cpu})]


if __name__ == "__main__":
    from common import report

    report(run())
