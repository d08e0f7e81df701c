"""The dashboard's cost with 50 live jobs (1 s refresh, headless, whole process), beside
`top -b -d 1` watching the same machine over the same window, along the jobs' life:

    python bench/idle.py                # all three phases, one set of jobs (about 11 minutes)
    python bench/idle.py first-minute   # from 5 s to 60 s after the jobs started: every row's Time ticks
    python bench/idle.py seconds        # 135 to 195 s after: Time and Idle still show seconds
    python bench/idle.py idle           # past the ten minutes durations show seconds: nothing ticks

The jobs are started under the dashboard; each phase is measured at its time in their life.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil

from common import Figure, ROOT, env_for, sandbox

JOBS = 50
SECONDS = float(os.environ.get("CODEXDASH_BENCH_IDLE_SECONDS", "60"))  # each window's length, at most
# Each phase: its window, in seconds after the jobs started, and what is on the screen then.
PHASES = {
    "first-minute": (5.0, 60.0, "in their first minute"),
    # From 135 s: the jobs went quiet at once, and are told stalled together at about 125 s (a toast
    # each): an event, not the idle screen this measures.
    "seconds": (135.0, 195.0, "2-3 min old (durations with seconds)"),
    "idle": (None, None, "idle, past the seconds of their durations"),
}

DASHBOARD = """
from codexdash.config import load_settings
from codexdash.jobs import JobEngine
from codexdash.store import open_store
from codexdash.ui.app import CodexdashApp
settings = load_settings()
CodexdashApp(JobEngine(settings, open_store(settings.db_path)), host="bench").run(headless=True, size=(140, 36))
"""


def window(phase: str) -> tuple[float, float]:
    start, end, _what = PHASES[phase]
    if start is None:  # durations past this show no seconds: a live row's text changes once a minute
        from codexdash.format import SECONDS_SHOWN_UNTIL

        start = SECONDS_SHOWN_UNTIL + 5.0
    return start, min(end or start + SECONDS, start + SECONDS)


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


def run(phases: list[str] | None = None) -> list[Figure]:
    from codexdash.kill import kill_job
    from codexdash.starting import StartRequest

    phases = phases or list(PHASES)
    if any(p not in PHASES for p in phases):
        raise ValueError(f"phases {phases!r}: of {', '.join(PHASES)}")
    box = sandbox("idle")
    jobs = []
    dash = subprocess.Popen([sys.executable, "-c", DASHBOARD], env=env_for(box), cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    figures = []
    try:
        d = psutil.Process(dash.pid)
        time.sleep(5)  # the dashboard's own start is not measured
        started = time.monotonic()
        jobs = [box["engine"].start(StartRequest(prompt=f"please SLEEP 1800 job {i}", cwd=str(box["root"])))
                for i in range(JOBS)]
        for phase in sorted(phases, key=lambda p: window(p)[0]):
            begin, end = window(phase)
            time.sleep(max(started + begin - time.monotonic(), 0))
            cpu, top_cpu, rss_mb = measure(d, started + end)
            what = PHASES[phase][2]
            figures.append(Figure(f"dashboard, {JOBS} live jobs {what}, {end - begin:.0f} s", f"{cpu:.2f} % of a core, {rss_mb:.0f} MB RSS",
                                  "≤ top", cpu <= top_cpu, reference=f"top -b -d 1: {top_cpu:.2f} % of a core",
                                  detail={"phase": phase, "cpu_percent": cpu, "rss_mb": rss_mb, "top_cpu_percent": top_cpu}))
    finally:
        dash.terminate()
        dash.wait(timeout=10)
        for job in jobs:
            try:
                kill_job(box["engine"], job, force=True)
            except Exception:
                pass
    return figures


if __name__ == "__main__":
    from common import report

    phases = sys.argv[1:]
    if any(p not in PHASES for p in phases):
        sys.exit(f"usage: {sys.argv[0]} [{'|'.join(PHASES)}] ...")
    report(run(phases))
