"""Runs every benchmark and prints each figure beside its target and its reference.

    python bench/run.py            # all (about 25 minutes: idle takes 11, pause 4, memory 4, boxes 2)
    python bench/run.py tail open  # some: tail, pause, open, startup, idle, first-minute, scale, memory, ops, boxes

The figures are also written to bench/results.json; BENCHMARKS.md keeps the latest run.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import boxes  # noqa: E402
import idle  # noqa: E402
import job_ops  # noqa: E402
import memory  # noqa: E402
import open_large  # noqa: E402
import pause  # noqa: E402
import scale  # noqa: E402
import startup  # noqa: E402
import tail_latency  # noqa: E402
from common import report  # noqa: E402

SUITES = {"tail": tail_latency.run, "pause": pause.run, "open": open_large.run, "startup": startup.run,
          "idle": idle.run, "scale": scale.run, "ops": job_ops.run,  # idle: the jobs' first minute, minutes 2-3, past ten
          "first-minute": lambda: idle.run(["first-minute"]), "memory": memory.run, "boxes": boxes.run}


def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(SUITES)}", file=sys.stderr)
        return 2
    figures = []
    for name in names or list(SUITES):
        print(f"running {name}…", flush=True)
        figures.extend(SUITES[name]())
    report(figures, Path(__file__).resolve().parent / "results.json")
    return 0 if all(f.met is not False for f in figures) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
