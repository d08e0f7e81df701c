"""The first line after a quiet spell → seen by a follower, in ms. Codex writes in bursts
separated by seconds (the model thinks, a tool runs): the line the operator waits for is the
first after the pause. One line is appended after each pause of 1, 5, 7 and 15 s; codexdash's
core follower, `codexdash logs FILE --follow` piped and GNU `tail -F` (the floor) all watch the
same file and are measured on the same appends.

    CODEXDASH_BENCH_PAUSE_ROUNDS=2 python bench/run.py pause   # fewer rounds, for a quick look
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

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
    box = sandbox("pause")
    path = box["root"] / "session.jsonl"
    path.write_bytes(b"")
    stop = threading.Event()
    core: dict[int, float] = {}
    cli: dict[int, float] = {}
    tail_f: dict[int, float] = {}
    cli_proc = subprocess.Popen([sys.executable, "-m", "codexdash", "logs", str(path), "--follow"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env_for(box))
    tail_proc = subprocess.Popen(["tail", "-n", "0", "-F", str(path)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    threading.Thread(target=core_follower, args=(path, stop, core), daemon=True).start()
    for stream, got in ((cli_proc.stdout, cli), (tail_proc.stdout, tail_f)):
        threading.Thread(target=read_pipe, args=(stream, got), daemon=True).start()
    sent: dict[int, float] = {}
    pause_of: dict[int, float] = {}
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        # A first line every follower must see, so that all are set up before the clock starts.
        os.write(fd, line(0))
        wait_seen([core, cli, tail_f], 0, timeout=30)
        seq = 1
        for pause, rounds in ROUNDS.items():
            for _ in range(int(SCALE) if SCALE else rounds):
                time.sleep(pause)
                sent[seq] = time.perf_counter()  # CLOCK_MONOTONIC: comparable across processes
                os.write(fd, line(seq))
                pause_of[seq] = pause
                wait_seen([core, cli, tail_f], seq)
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
             for name, got in (("core", core), ("cli", cli), ("tail_F", tail_f))}
        target = pause == TARGET_PAUSE
        for name, label in (("core", "core follower"), ("cli", "`codexdash logs FILE --follow` piped")):
            figures.append(Figure(
                f"first line after {pause:.0f} s of quiet, {label}", fmt_pct(p[name]),
                f"p95 ≤ {TARGET_MS:.0f} ms" if target else "", p[name]["p95"] <= TARGET_MS if target else None,
                reference=f"tail -F: {fmt_pct(p['tail_F'])}", detail={"pause_s": pause, **p}))
    return figures


if __name__ == "__main__":
    from common import report

    report(run())
