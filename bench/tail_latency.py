"""A line appended to a session file → seen by a follower, in ms, over ≥ 500 appends at varied
rates. Followers measured together on the same appends: codexdash's core follower (kernel file
events), the same on its portable watchfiles path, GNU `tail -F` (the floor), watchfiles with its
default settings; then the CLI piped to this process, and the dashboard's pane (headless app)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from common import Figure, fmt_pct, percentiles, sandbox, env_for

APPENDS = 500
SEQ = re.compile(rb"seq (\d+) ")


def line(seq: int) -> bytes:
    payload = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": f"seq {seq} " + "x" * 200}]}
    return (json.dumps({"timestamp": "2026-01-01T00:00:00.000Z", "type": "response_item", "payload": payload}) + "\n").encode()


def appender(path: Path, sent: dict[int, float], n: int = APPENDS, seed: int = 7) -> None:
    rng = random.Random(seed)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        for seq in range(n):
            time.sleep(rng.choice([0.002, 0.01, 0.03, 0.08]))  # bursts and pauses
            data = line(seq)
            sent[seq] = time.perf_counter()  # CLOCK_MONOTONIC: comparable across processes
            os.write(fd, data)
    finally:
        os.close(fd)


def latencies(sent: dict[int, float], got: dict[int, float]) -> dict:
    return percentiles([(got[s] - sent[s]) * 1000 for s in sent if s in got])


def read_pipe(stream, got: dict[int, float]) -> None:
    for raw in iter(stream.readline, b""):
        m = SEQ.search(raw)
        if m:
            got.setdefault(int(m.group(1)), time.perf_counter())


def core_follower(path: Path, stop, got: dict[int, float], kernel_events: bool | None = None) -> None:
    from codexdash.follow import Follower
    from codexdash.tail import session_from

    for update in Follower(session_from(path), stop=stop, kernel_events=kernel_events):
        for event in update.events:
            m = SEQ.search(event.text.encode())
            if m:
                got[int(m.group(1))] = time.perf_counter()


def default_watchfiles(path: Path, stop: threading.Event, got: dict[int, float]) -> None:
    from watchfiles import watch

    from codexdash.tail import SessionTail

    tail = SessionTail(path)
    for _ in watch(path.parent, stop_event=stop, rust_timeout=200, yield_on_timeout=True):
        for raw in tail.read().lines:
            m = SEQ.search(raw)
            if m:
                got[int(m.group(1))] = time.perf_counter()


def run_core() -> list[Figure]:
    from codexdash.follow import Stop

    box = sandbox("tail")
    path = box["root"] / "session.jsonl"
    path.write_bytes(b"")
    stop = Stop()
    sent: dict[int, float] = {}
    core: dict[int, float] = {}
    portable: dict[int, float] = {}
    wf: dict[int, float] = {}
    tail_f: dict[int, float] = {}
    tail_proc = subprocess.Popen(["tail", "-n", "0", "-F", str(path)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    threads = [threading.Thread(target=core_follower, args=(path, stop, core), daemon=True),
               threading.Thread(target=core_follower, args=(path, stop, portable, False), daemon=True),
               threading.Thread(target=default_watchfiles, args=(path, stop, wf), daemon=True),
               threading.Thread(target=read_pipe, args=(tail_proc.stdout, tail_f), daemon=True)]
    for t in threads:
        t.start()
    time.sleep(0.5)  # let the watchers set up before the first append
    appender(path, sent)
    time.sleep(2.0)  # the default watchfiles debounce is 1.6 s
    stop.set()
    tail_proc.terminate()
    p_core, p_tail, p_wf = latencies(sent, core), latencies(sent, tail_f), latencies(sent, wf)
    p_portable = latencies(sent, portable)
    return [Figure("tail latency, core follower", fmt_pct(p_core), "p95 ≤ 5 ms", p_core["p95"] <= 5,
                   reference=f"tail -F: {fmt_pct(p_tail)}; watchfiles defaults: {fmt_pct(p_wf)}",
                   detail={"core": p_core, "tail_F": p_tail, "watchfiles_default": p_wf}),
            Figure("tail latency, core follower, watchfiles path", fmt_pct(p_portable), "", None,
                   reference=f"tail -F: {fmt_pct(p_tail)}", detail={"core_watchfiles": p_portable, "tail_F": p_tail})]


def run_cli() -> list[Figure]:
    box = sandbox("cli-follow")
    path = box["root"] / "session.jsonl"
    path.write_bytes(b"")
    sent: dict[int, float] = {}
    cli: dict[int, float] = {}
    ref: dict[int, float] = {}
    proc = subprocess.Popen([sys.executable, "-m", "codexdash", "logs", str(path), "--follow"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env_for(box))
    tail_proc = subprocess.Popen(["tail", "-n", "0", "-F", str(path)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    for stream, got in ((proc.stdout, cli), (tail_proc.stdout, ref)):
        threading.Thread(target=read_pipe, args=(stream, got), daemon=True).start()
    time.sleep(1.5)  # the CLI's start-up is not part of this figure
    appender(path, sent)
    time.sleep(0.5)
    proc.terminate()
    tail_proc.terminate()
    p_cli, p_ref = latencies(sent, cli), latencies(sent, ref)
    return [Figure("tail latency, `codexdash logs --follow` piped", fmt_pct(p_cli), "p95 ≤ 5 ms", p_cli["p95"] <= 5,
                   reference=f"tail -F piped: {fmt_pct(p_ref)}", detail={"cli": p_cli, "tail_F": p_ref})]


def run_pane() -> list[Figure]:
    from codexdash.store import Job, JobStatus
    from codexdash.ui.app import CodexdashApp
    from codexdash.ui.session_pane import SessionPane

    box = sandbox("pane")
    path = box["root"] / "session.jsonl"
    path.write_bytes(b"")
    now = time.time()
    with box["store"].write():
        Job.create(id="bench00001", marker="cdx-bench", status=JobStatus.COMPLETED, argv="[]", cwd=str(box["root"]),
                   prompt="bench", created_at=now, started_at=now, ended_at=now, session_file=str(path))
    seen: dict[int, float] = {}
    original = SessionPane.on_session_update

    def timed(self, message):
        original(self, message)
        stamp = time.perf_counter()
        for event in message.events:
            m = SEQ.search(event.text.encode())
            if m:
                seen[int(m.group(1))] = stamp

    SessionPane.on_session_update = timed
    sent: dict[int, float] = {}

    async def drive():
        app = CodexdashApp(box["engine"], host="bench")
        async with app.run_test(size=(140, 36)) as pilot:
            while app.pane.path != str(path):
                await pilot.pause(0.05)
            await pilot.pause(0.5)
            writer = threading.Thread(target=appender, args=(path, sent), daemon=True)
            writer.start()
            while writer.is_alive():
                await asyncio.sleep(0.05)
            await pilot.pause(0.5)

    try:
        asyncio.run(drive())
    finally:
        SessionPane.on_session_update = original
    p = latencies(sent, seen)
    return [Figure("tail latency, dashboard pane (headless)", fmt_pct(p), "p95 ≤ 15 ms", p["p95"] <= 15, detail={"pane": p})]


def run() -> list[Figure]:
    return run_core() + run_cli() + run_pane()


if __name__ == "__main__":
    from common import report

    report(run())
