"""Shared pieces of the benchmarks: sandboxes, percentiles, and the results table."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".cache" / "bench"
sys.path.insert(0, str(ROOT))


@dataclass
class Figure:
    name: str
    value: str  # as printed
    target: str
    met: bool | None  # None: no target to meet (a reference only)
    reference: str = ""
    detail: dict = field(default_factory=dict)


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    s = sorted(samples_ms)
    q = statistics.quantiles(s, n=100, method="inclusive")
    return {"p50": statistics.median(s), "p95": q[94], "p99": q[98], "n": len(s)}


def fmt_pct(p: dict[str, float]) -> str:
    return f"p50 {p['p50']:.1f} / p95 {p['p95']:.1f} / p99 {p['p99']:.1f} ms (n={p['n']})"


def sandbox(name: str) -> dict:
    """A temporary CODEX_HOME, database and fake codex for one benchmark."""
    from codexdash.config import Settings
    from codexdash.fake_codex import install
    from codexdash.jobs import JobEngine
    from codexdash.store import open_store

    root = Path(tempfile.mkdtemp(prefix=f"codexdash-bench-{name}-"))
    (root / "home").mkdir()
    codex = install(root / "bin")
    settings = Settings(codex_home=root / "home", db_path=root / "jobs.db", codex_command=(str(codex),),
                        interrupt_grace=2.0, terminate_grace=2.0)
    store = open_store(settings.db_path)
    return {"root": root, "settings": settings, "store": store, "engine": JobEngine(settings, store)}


def env_for(box: dict) -> dict[str, str]:
    s = box["settings"]
    return {**os.environ, "CODEX_HOME": str(s.codex_home), "CODEXDASH_DB": str(s.db_path),
            "CODEXDASH_CODEX": s.codex_command[0], "CODEXDASH_CONFIG": str(box["root"] / "none.toml")}


def machine() -> dict:
    import psutil

    cpu = platform.processor() or "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": cpu, "cores": os.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1), "python": platform.python_version(),
            "kernel": platform.release()}


def report(figures: list[Figure], out_json: Path | None = None) -> None:
    width = max(len(f.name) for f in figures)
    print()
    for f in figures:
        verdict = "" if f.met is None else ("  OK " if f.met else "  MISS")
        target = f"  [target {f.target}]" if f.target else ""
        print(f"{f.name.ljust(width)}  {f.value}{target}{verdict}")
        if f.reference:
            print(f"{' ' * width}  reference: {f.reference}")
    if out_json:
        out_json.write_text(json.dumps({"machine": machine(), "figures": [asdict(f) for f in figures]}, indent=2))
