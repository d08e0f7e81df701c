"""The dashboard's cost with 50 live jobs (1 s refresh, headless, whole process), beside
`top -b -d 1` watching the same machine over the same window. Two phases:

    python bench/idle.py idle           # jobs already running: 60 s once their first minute is over
    python bench/idle.py first-minute   # jobs started under the dashboard: from 5 s to 60 s after

In the jobs' first minute every live row's uptime ticks each second; after it, the table is idle.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil

from common import Figure, ROOT, env_for, sandbox

JOBS = 50
SECONDS = float(os.environ.get("CODEXDASH_BENCH_IDLE_SECONDS", "60"))  # the idle window
FROM, TO = 5.0, 60.0  # the first-minute window, in seconds after the jobs started
PHASES = ("idle", "first-minute")

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


def measure(dash: psutil.Process, until: float) -> tuple[float, float, float]:
    """The dashboard's share of a core and its peak RSS (MB) from now to `until` (monotonic),
    and top's share of a core over the same window."""
    top = subprocess.Popen(["top", "-b", "-d", "1"], stdout=subprocess.DEVNULL)
    try:
        watcher = psutil.Process(top.pid)
        t0, c0, top0 = time.monotonic(), cpu_seconds(dash), cpu_seconds(watcher)
        rss_peak = 0
        while time.monotonic() < until:
            rss_peak = max(rss_peak, dash.memory_info().rss)
            time.sleep(min(1.0, max(until - time.monotonic(), 0)))
        wall = time.monotonic() - t0
        return 100 * (cpu_seconds(dash) - c0) / wall, 100 * (cpu_seconds(watcher) - top0) / wall, rss_peak / 2**20
    finally:
        top.terminate()
        top.wait(timeout=10)


def run(phase: str = "idle") -> list[Figure]:
    from codexdash.starting import StartRequest
    from codexdash.kill import kill_job

    if phase not in PHASES:
        raise ValueError(f"phase {phase!r}: one of {', '.join(PHASES)}")
    box = sandbox(f"idle-{phase}")

    def start_jobs() -> list:
        return [box["engine"].start(StartRequest(prompt=f"please SLEEP 900 job {i}", cwd=str(box["root"])))
                for i in range(JOBS)]

    jobs = start_jobs() if phase == "idle" else []
    dash = subprocess.Popen([sys.executable, "-c", DASHBOARD], env=env_for(box), cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        d = psutil.Process(dash.pid)
        time.sleep(5)  # the dashboard's own start is not measured
        if phase == "idle":
            time.sleep(max(60 - 5, 0))  # the jobs' first minute: measured by the other phase
            cpu, top_cpu, rss_mb = measure(d, time.monotonic() + SECONDS)
        else:
            started = time.monotonic()
            jobs = start_jobs()
            time.sleep(max(started + FROM - time.monotonic(), 0))
            cpu, top_cpu, rss_mb = measure(d, started + TO)
    finally:
        dash.terminate()
        dash.wait(timeout=10)
        for job in jobs:
            try:
                kill_job(box["engine"], job, force=True)
            except Exception:
                pass
    reference = f"top -b -d 1: {top_cpu:.2f} % of a core"
    if phase == "idle":
        return [Figure(f"dashboard idle, {JOBS} live jobs, {SECONDS:.0f} s", f"{cpu:.2f} % of a core, {rss_mb:.0f} MB RSS",
                       "≤ top, ≤ 150 MB", cpu <= top_cpu and rss_mb <= 150, reference=reference,
                       detail={"cpu_percent": cpu, "rss_mb": rss_mb, "top_cpu_percent": top_cpu})]
    return [Figure(f"dashboard, {JOBS} jobs in their first minute ({FROM:.0f}-{TO:.0f} s)", f"{cpu:.2f} % of a core",
                   "≤ top", cpu <= top_cpu, reference=reference, detail={"cpu_percent": cpu, "top_cpu_percent": top_cpu})]


if __name__ == "__main__":
    from common import report

    phases = sys.argv[1:] or ["idle"]
    if any(p not in PHASES for p in phases):
        sys.exit(f"usage: {sys.argv[0]} [{'|'.join(PHASES)}] ...")
    report([figure for phase in phases for figure in run(phase)])
