"""The first line after a quiet spell → seen by a follower, in ms. Codex writes in bursts
separated by seconds (the model thinks, a tool runs): the line the operator waits for is the
first after the pause. One line is appended after each pause of 1, 5, 7 and 15 s; codexdash's
core follower (kernel file events), the same on its portable watchfiles path, `codexdash logs
FILE --follow` piped and GNU `tail -F` (the floor) all watch the same file and are measured on the
same appends.

Then what an idle follower costs: `codexdash logs FILE --follow` on each path, `logs JOB --follow`
on a live job that writes nothing (it also looks at the job once a second) and `tail -F`, all for
the same 30 s: CPU time and wake-ups (context switches) per second.

    CODEXDASH_BENCH_PAUSE_ROUNDS=2 python bench/run.py pause   # fewer rounds, for a quick look
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import psutil

from common import Figure, env_for, fmt_pct, percentiles, sandbox
from tail_latency import core_follower, line, read_pipe

# pause (s) → appends after it; about 3 minutes in all. The target is set at 7 s.
ROUNDS = {1.0: 20, 5.0: 8, 7.0: 8, 15.0: 4}
SCALE = os.environ.get("CODEXDASH_BENCH_PAUSE_ROUNDS")
TARGET_PAUSE, TARGET_MS = 7.0, 5.0


def wait_seen(got: list[dict[int, float]], seq: int, timeout: float = 5.0) -> None:
    """Until every follower has seen `seq` (or gave up on it): the next pause starts quiet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(seq in g for g in got):
        time.sleep(0.01)


def run() -> list[Figure]:
    from codexdash.follow import Stop

    box = sandbox("pause")
    path = box["root"] / "session.jsonl"
    path.write_bytes(b"")
    stop = Stop()
    core: dict[int, float] = {}
    portable: dict[int, float] = {}
    cli: dict[int, float] = {}
    tail_f: dict[int, float] = {}
    cli_proc = subprocess.Popen([sys.executable, "-m", "codexdash", "logs", str(path), "--follow"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env_for(box))
    tail_proc = subprocess.Popen(["tail", "-n", "0", "-F", str(path)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    threading.Thread(target=core_follower, args=(path, stop, core), daemon=True).start()
    threading.Thread(target=core_follower, args=(path, stop, portable, False), daemon=True).start()
    for stream, got in ((cli_proc.stdout, cli), (tail_proc.stdout, tail_f)):
        threading.Thread(target=read_pipe, args=(stream, got), daemon=True).start()
    sent: dict[int, float] = {}
    pause_of: dict[int, float] = {}
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        # A first line every follower must see, so that all are set up before the clock starts.
        os.write(fd, line(0))
        wait_seen([core, portable, cli, tail_f], 0, timeout=30)
        seq = 1
        for pause, rounds in ROUNDS.items():
            for _ in range(int(SCALE) if SCALE else rounds):
                time.sleep(pause)
                sent[seq] = time.perf_counter()  # CLOCK_MONOTONIC: comparable across processes
                os.write(fd, line(seq))
                pause_of[seq] = pause
                wait_seen([core, portable, cli, tail_f], seq)
                seq += 1
    finally:
        os.close(fd)
        stop.set()
        cli_proc.terminate()
        tail_proc.terminate()
    figures = []
    for pause in ROUNDS:
        seqs = [s for s in sent if pause_of[s] == pause]
        p = {name: percentiles([(got[s] - sent[s]) * 1000 for s in seqs if s in got])
             for name, got in (("core", core), ("core_watchfiles", portable), ("cli", cli), ("tail_F", tail_f))}
        for name, label in (("core", "core follower"), ("cli", "`codexdash logs FILE --follow` piped"),
                            ("core_watchfiles", "core follower, watchfiles path")):
            target = pause == TARGET_PAUSE and name != "core_watchfiles"
            figures.append(Figure(
                f"first line after {pause:.0f} s of quiet, {label}", fmt_pct(p[name]),
                f"p95 ≤ {TARGET_MS:.0f} ms" if target else "", p[name]["p95"] <= TARGET_MS if target else None,
                reference=f"tail -F: {fmt_pct(p['tail_F'])}", detail={"pause_s": pause, **p}))
    return figures + run_idle()


def run_idle(seconds: float = 30.0) -> list[Figure]:
    from codexdash.starting import StartRequest
    from codexdash.kill import kill_job

    box = sandbox("pause-idle")
    path = box["root"] / "session.jsonl"
    path.write_bytes(line(0))
    cli = [sys.executable, "-m", "codexdash", "logs", str(path), "--follow"]
    job = box["engine"].start(StartRequest(prompt="please SLEEP 900", cwd=str(box["root"])))
    procs = {
        "inotify": subprocess.Popen(cli, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env_for(box)),
        "watchfiles": subprocess.Popen(cli, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                       env={**env_for(box), "CODEXDASH_FOLLOW": "watchfiles"}),
        "job": subprocess.Popen(cli[:4] + [job.id, "--follow"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                env=env_for(box)),
        "tail_F": subprocess.Popen(["tail", "-n", "1", "-F", str(path)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL),
    }
    try:
        for proc in procs.values():  # each has printed the line: started and following
            proc.stdout.readline()
        time.sleep(2.0)  # the last of the start-up settles
        handles = {name: psutil.Process(proc.pid) for name, proc in procs.items()}
        before = {name: _usage(h) for name, h in handles.items()}
        t0 = time.monotonic()
        time.sleep(seconds)
        wall = time.monotonic() - t0
        after = {name: _usage(h) for name, h in handles.items()}
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(timeout=10)
        kill_job(box["engine"], job, force=True)
    cost = {name: {"cpu_percent": 100 * (after[name][0] - before[name][0]) / wall,
                   "wakeups_per_s": (after[name][1] - before[name][1]) / wall} for name in procs}

    def fmt(c: dict) -> str:
        return f"{c['cpu_percent']:.4f} % of a core, {c['wakeups_per_s']:.1f} wake-ups/s"

    return [Figure(f"idle follower, `codexdash logs FILE --follow`, {label}, {seconds:.0f} s quiet", fmt(cost[name]),
                   "", None, reference=f"tail -F: {fmt(cost['tail_F'])}", detail=cost)
            for name, label in (("inotify", "kernel events"), ("watchfiles", "watchfiles path"))] + [
        Figure(f"idle follower, `codexdash logs JOB --follow` (a live, quiet job), {seconds:.0f} s", fmt(cost["job"]),
               "", None, reference=f"tail -F: {fmt(cost['tail_F'])}", detail=cost)]


def _usage(proc: psutil.Process) -> tuple[float, int]:
    """CPU seconds (the scheduler's nanoseconds, finer than the 10 ms ticks of `times`) and
    context switches (every wake-up of every thread is one) so far."""
    cpu, switches = 0.0, 0
    for tid in os.listdir(f"/proc/{proc.pid}/task"):
        with open(f"/proc/{proc.pid}/task/{tid}/schedstat") as fh:
            cpu += int(fh.read().split()[0]) / 1e9
        with open(f"/proc/{proc.pid}/task/{tid}/status") as fh:
            for row in fh:
                if row.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    switches += int(row.split()[1])
    return cpu, switches
