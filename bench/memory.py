"""The dashboard's memory (headless, whole process): RSS with 10,000 job records, and RSS over
1,000 jobs that start and finish while it watches (fake Codex, 25 at a time), after a warm-up
of 100. `ps -o rss` of a bare `python -c pass` is printed beside, as the floor of a process."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

import psutil

from common import Figure, ROOT, env_for, sandbox

RECORDS = 10_000
FINISHED = int(os.environ.get("CODEXDASH_BENCH_FINISHED", "1000"))
WARM_UP = 100
WAVE = 25

DASHBOARD = """
from codexdash.config import load_settings
from codexdash.jobs import JobEngine
from codexdash.store import open_store
from codexdash.ui.app import CodexdashApp
settings = load_settings()
CodexdashApp(JobEngine(settings, open_store(settings.db_path)), host="bench").run(headless=True, size=(140, 36))
"""


def start_dashboard(box) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", DASHBOARD], env=env_for(box), cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def rss_mb(proc: psutil.Process) -> float:
    return proc.memory_info().rss / 2**20


def settled_rss(proc: psutil.Process, seconds: float = 5.0) -> float:
    """The RSS once it stops moving: the median of a few samples after `seconds`."""
    time.sleep(seconds)
    samples = []
    for _ in range(5):
        samples.append(rss_mb(proc))
        time.sleep(0.5)
    return statistics.median(samples)


def add_finished(box, n: int) -> None:
    import json

    from codexdash.store import Job, JobStatus

    now = time.time()
    rows = [dict(id=f"done{i:06d}", marker=f"cdx-done-{i}", status=JobStatus.COMPLETED,
                 argv=json.dumps(["codex", "exec", "--", f"task {i}"]), cwd="/home/operator/project",
                 prompt=f"task {i}: fix the failing test in module {i % 97}", name=f"task {i}", model="mock-model",
                 created_at=now - 1000 - i, started_at=now - 1000 - i, ended_at=now - 900 - i, exit_code=0,
                 tokens=1000 + i) for i in range(n)]
    with box["store"].write():
        for start in range(0, n, 500):
            Job.insert_many(rows[start : start + 500]).execute()


def records_case() -> float:
    box = sandbox("memory-records")
    add_finished(box, RECORDS)
    dash = start_dashboard(box)
    try:
        return settled_rss(psutil.Process(dash.pid), 8.0)
    finally:
        dash.terminate()
        dash.wait(timeout=10)


def finished_case() -> list[tuple[int, float]]:
    """(jobs finished so far, dashboard RSS) along the run."""
    from codexdash.starting import StartRequest
    from codexdash.store import Job, JobStatus

    box = sandbox("memory-jobs")
    engine = box["engine"]
    dash = start_dashboard(box)
    d = psutil.Process(dash.pid)
    points = []
    try:
        time.sleep(3)
        points.append((0, rss_mb(d)))
        done = 0
        while done < FINISHED:
            wave = [engine.start(StartRequest(prompt=f"ECHO job {done + i} finished", cwd=str(box["root"])))
                    for i in range(WAVE)]
            for job in wave:  # reaped here, settled by the dashboard that watches them
                engine._children.pop(job.id).wait(timeout=60)
            ids = [j.id for j in wave]
            deadline = time.monotonic() + 60
            while Job.select().where(Job.id.in_(ids) & Job.status.in_(JobStatus.LIVE)).count():
                if time.monotonic() > deadline:
                    raise RuntimeError("the dashboard did not settle the jobs within a minute")
                time.sleep(0.1)
            done += WAVE
            if done % 100 == 0:
                points.append((done, rss_mb(d)))
        points.append((done, settled_rss(d, 3.0)))
    finally:
        dash.terminate()
        dash.wait(timeout=10)
    return points


def bare_rss() -> float:
    out = subprocess.run([sys.executable, "-c", "import os; print(open('/proc/self/status').read())"],
                         capture_output=True, text=True, check=True).stdout
    return next(int(line.split()[1]) for line in out.splitlines() if line.startswith("VmRSS")) / 1024


def run() -> list[Figure]:
    floor = bare_rss()
    with_records = records_case()
    points = finished_case()
    warm = next(rss for n, rss in points if n >= WARM_UP)
    end = points[-1][1]
    growth = end - warm
    per_job_kb = 1024 * growth / max(points[-1][0] - WARM_UP, 1)
    trace = ", ".join(f"{n}: {rss:.0f}" for n, rss in points)
    return [
        Figure(f"dashboard RSS, {RECORDS:,} records", f"{with_records:.0f} MB", "≤ 80 MB", with_records <= 80,
               reference=f"python -c pass: {floor:.0f} MB", detail={"rss_mb": with_records, "floor_mb": floor}),
        Figure(f"dashboard RSS over {points[-1][0]:,} finished jobs", f"{warm:.0f} → {end:.0f} MB after {WARM_UP} "
               f"({growth:+.1f} MB, {per_job_kb:.1f} KB a job; MB by jobs: {trace})", "flat after warm-up (≤ 5 MB)",
               growth <= 5, reference=f"python -c pass: {floor:.0f} MB", detail={"points": points}),
    ]


if __name__ == "__main__":
    from common import report

    report(run())
