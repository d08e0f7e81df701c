"""Opening a 200 MB session file (many events, some large tool outputs, some lines over 1 MB):
the last 200 events rendered, in-process (time and extra memory) and through the CLI, beside
`tail -n 200` of the same file."""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import time

from common import DATA, Figure, ROOT

SIZE = 200 << 20
PATH = DATA / "large-session.jsonl"


def record(rtype: str, payload: dict, n: int) -> bytes:
    return (json.dumps({"timestamp": "2026-01-01T00:00:00.000Z", "ordinal": n, "type": rtype, "payload": payload}) + "\n").encode()


def make_file() -> None:
    """A realistic long session, made once and kept in .cache/bench/."""
    if PATH.exists() and PATH.stat().st_size >= SIZE:
        return
    DATA.mkdir(parents=True, exist_ok=True)
    rng = random.Random(1)
    sample = (ROOT / "tests" / "fixtures" / "sessions" / "completed-tool-call.jsonl").read_bytes()
    with open(PATH, "wb") as fh:
        fh.write(sample.splitlines(keepends=True)[0])  # a real session_meta (~20 KB)
        n, written, turn = 1, 0, 0
        while written < SIZE:
            turn += 1
            size = rng.choice([200, 2_000, 10_000, 50_000]) if rng.random() > 0.01 else rng.randint(1_100_000, 2_500_000)
            out = "".join(rng.choice("abcdefghij \n") for _ in range(min(size, 4096))) * (size // 4096 + 1)
            recs = [
                record("response_item", {"type": "message", "role": "user", "content": [{"type": "input_text", "text": f"step {turn}: run the tests"}]}, n),
                record("response_item", {"type": "function_call", "name": "exec_command", "call_id": f"c{turn}",
                                         "arguments": json.dumps({"cmd": f"pytest -k case{turn}"})}, n + 1),
                record("event_msg", {"type": "item_completed", "item": {"type": "CommandExecution", "id": f"c{turn}",
                                                                        "aggregated_output": out[:size], "exit_code": turn % 3}}, n + 2),
                record("response_item", {"type": "function_call_output", "call_id": f"c{turn}", "output": out[:size]}, n + 3),
                record("response_item", {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": f"turn {turn} done"}]}, n + 4),
                record("event_msg", {"type": "token_count", "info": {"total_token_usage": {"total_tokens": turn * 1000}}}, n + 5),
            ]
            for r in recs:
                fh.write(r)
                written += len(r)
            n += 6


IN_PROCESS = """
import sys, time
from codexdash.render import render_events
from codexdash.tail import open_session

def vm(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024

open("/proc/self/clear_refs", "w").write("5")  # resets the peak RSS (VmHWM) to the current RSS
base = vm("VmRSS:")
t = time.perf_counter()
opened = open_session(sys.argv[1], last=200)
lines = render_events(opened.events)
elapsed = time.perf_counter() - t
print(elapsed * 1000, (vm("VmHWM:") - base) / 2**20, len(opened.events), len(lines))
"""


def timed(cmd: list[str], runs: int = 5, env=None) -> float:
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def run() -> list[Figure]:
    make_file()
    size_mb = PATH.stat().st_size / 2**20
    results = []
    for _ in range(5):
        out = subprocess.run([sys.executable, "-c", IN_PROCESS, str(PATH)], capture_output=True, text=True, check=True, cwd=ROOT)
        results.append([float(x) for x in out.stdout.split()])
    ms = statistics.median(r[0] for r in results)
    mem = max(r[1] for r in results)
    tail_ms = timed(["tail", "-n", "200", str(PATH)])
    cli_ms = timed([sys.executable, "-m", "codexdash", "logs", str(PATH), "--tail", "200"], env={**os.environ, "NO_COLOR": "1"})
    return [
        Figure(f"open {size_mb:.0f} MB session, last 200 events, in-process", f"{ms:.1f} ms, {mem:.1f} MB extra",
               "≤ 50 ms, ≤ 30 MB", ms <= 50 and mem <= 30, reference=f"tail -n 200: {tail_ms:.1f} ms (whole process)",
               detail={"ms": ms, "extra_mb": mem, "events": results[0][2], "tail_ms": tail_ms}),
        Figure("`codexdash logs FILE --tail 200`, whole process", f"{cli_ms:.0f} ms", "≤ 60 ms", cli_ms <= 60,
               reference=f"tail -n 200: {tail_ms:.1f} ms", detail={"ms": cli_ms}),
    ]


if __name__ == "__main__":
    from common import report

    report(run())
