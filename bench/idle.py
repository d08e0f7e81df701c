"""The dashboard's idle cost: 50 live jobs, 1 s refresh, 60 s, whole process (headless), beside
`top -b -d 1` watching the same machine for the same time."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil

from common import Figure, ROOT, env_for, sandbox

JOBS = 50
SECONDS = float(os.environ.get("CODEXDASH_BENCH_IDLE_SECONDS", "60"))

DASHBOARD = """
from codexdash.config import load_settings
from codexdash.jobs import JobEngine
from codexdash.store import open_store
from codexdash.ui.app import CodexdashApp
settings = load_settings()
CodexdashApp(JobEngine(settings, open_store(settings.db_path)), host="bench").run(headless=True, size=(140, 36))
"""


def cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def run() -> list[Figure]:
    from codexdash.jobs import StartRequest
    from codexdash.kill import kill_job

    box = sandbox("idle")
    jobs = [box["engine"].start(StartRequest(prompt=f"please SLEEP 900 job {i}", cwd=str(box["root"]))) for i in range(JOBS)]
    dash = subprocess.Popen([sys.executable, "-c", DASHBOARD], env=env_for(box), cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        d = psutil.Process(dash.pid)
        time.sleep(5)  # start-up and the first refreshes are not idle
        # The jobs' first minute (their times tick every second), then the steady state.
        f0, first_c0 = time.monotonic(), cpu_seconds(d)
        time.sleep(max(60 - 5, 0))
        first_minute = 100 * (cpu_seconds(d) - first_c0) / (time.monotonic() - f0)
        top = subprocess.Popen(["top", "-b", "-d", "1"], stdout=subprocess.DEVNULL)
        t_top = psutil.Process(top.pid)
        t0, c0 = time.monotonic(), cpu_seconds(d)
        rss_peak = 0
        while time.monotonic() - t0 < SECONDS:
            rss_peak = max(rss_peak, d.memory_info().rss)
            time.sleep(1)
        wall = time.monotonic() - t0
        cpu = 100 * (cpu_seconds(d) - c0) / wall
        top_cpu = 100 * cpu_seconds(t_top) / wall
        top.terminate()
        top.wait(timeout=10)
    finally:
        dash.terminate()
        dash.wait(timeout=10)
        for job in jobs:
            try:
                kill_job(box["engine"], job, force=True)
            except Exception:
                pass
    rss_mb = rss_peak / 2**20
    return [Figure(f"dashboard idle, {JOBS} live jobs, {SECONDS:.0f} s", f"{cpu:.2f} % of a core, {rss_mb:.0f} MB RSS "
                   f"(jobs' first minute: {first_minute:.2f} %)",
                   "≤ 2 %, ≤ 150 MB", cpu <= 2 and rss_mb <= 150, reference=f"top -b -d 1: {top_cpu:.2f} % of a core",
                   detail={"cpu_percent": cpu, "rss_mb": rss_mb, "top_cpu_percent": top_cpu,
                           "cpu_percent_jobs_first_minute": first_minute})]


if __name__ == "__main__":
    from common import report

    report(run())
