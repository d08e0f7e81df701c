"""Operations on one job: the identity check (beside the origin design's `ps -p PID -o command=`
per check), a start (command issued → recorded running), and the kill of a cooperative job
(confirm → whole tree gone)."""

from __future__ import annotations

import statistics
import subprocess
import time

from common import Figure, sandbox


def run() -> list[Figure]:
    from codexdash.identity import verify
    from codexdash.starting import StartRequest
    from codexdash.kill import kill_job

    box = sandbox("ops")
    engine = box["engine"]
    starts = []
    jobs = []
    for i in range(20):
        t = time.perf_counter()
        job = engine.start(StartRequest(prompt=f"please SLEEP 900 job {i}", cwd=str(box["root"])))
        starts.append((time.perf_counter() - t) * 1000)
        jobs.append(job)
    start_ms = statistics.median(starts)

    job = jobs[0]
    checks = []
    for _ in range(200):
        t = time.perf_counter()
        report = verify(job)
        checks.append((time.perf_counter() - t) * 1000)
        report.close()
        assert report.ok, report.reason()
    ps = []
    for _ in range(50):
        t = time.perf_counter()
        subprocess.run(["ps", "-p", str(job.pid), "-o", "command="], stdout=subprocess.DEVNULL, check=True)
        ps.append((time.perf_counter() - t) * 1000)
    check_ms, ps_ms = statistics.median(checks), statistics.median(ps)

    # Cooperative: the fake agent, like Codex, records the interruption and exits on SIGINT.
    time.sleep(1.0)  # let each job reach its tool command, as a running Codex would be
    kills = []
    for job in jobs[:10]:
        t = time.perf_counter()
        result = kill_job(engine, job)
        kills.append((time.perf_counter() - t) * 1000)
        assert result.stopped and result.sent == ["SIGINT"], result
    for job in jobs[10:]:
        kill_job(engine, job, force=True)
    kill_ms = max(kills)
    grace = engine.settings.interrupt_grace * 1000
    return [
        Figure("identity check of one job", f"{check_ms:.2f} ms ({ps_ms / check_ms:.0f}× faster)", "≥ 20× faster than ps",
               ps_ms / check_ms >= 20, reference=f"ps -p PID -o command=: {ps_ms:.2f} ms", detail={"ms": check_ms, "ps_ms": ps_ms}),
        Figure("start: command → recorded running, in-process", f"{start_ms:.1f} ms (median of 20)", "≤ 100 ms", start_ms <= 100,
               detail={"samples": starts}),
        Figure("kill of a cooperative job: confirm → whole tree gone", f"{kill_ms:.0f} ms (worst of 10)",
               f"≤ grace ({grace:.0f} ms) + 100 ms", kill_ms <= grace + 100,
               reference=f"median {statistics.median(kills):.0f} ms", detail={"samples": kills}),
    ]


if __name__ == "__main__":
    from common import report

    report(run())
