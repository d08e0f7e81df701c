"""The dashboard over two boxes reached by ssh: the first frame with every box's rows, and the
idle cost, beside what ssh itself costs in the same run.

Each box is a real sshd on 127.0.0.1 in a PID namespace of its own (the tests' boxes,
tests/ssh_boxes.py; needs root), with 10 live jobs; this box has 10 more. The dashboard runs in
a real terminal (tmux, 140×40); its screen is read with capture-pane.

- first frame: from launch to this box's rows, then to the rows of both boxes, with the ssh
  connections cold (no shared connection yet); reference: one cold `ssh BOX true` (what a
  box's first look must pay at least), and `codexdash list --all-hosts` from a cold start;
- idle: 30 s once everything is shown: the dashboard's CPU, with the ssh clients it runs (its
  children), beside `top -b -d 1` and beside the same dashboard over this box alone (its 10
  rows, no boxes: what the table costs while the jobs' times tick each second, in their first
  ten minutes); and what the looks cost on the boxes (each box's sshd and everything it ran for
  us).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from common import ROOT, Figure

JOBS = 10  # live jobs per box, and on this one
IDLE_SECONDS = float(os.environ.get("CODEXDASH_BENCH_BOX_IDLE_SECONDS", "30"))
SIZE = (140, 40)


def _sandbox(tmp: Path):
    from codexdash.config import Settings
    from codexdash.fake_codex import install
    from codexdash.jobs import JobEngine
    from codexdash.store import open_store
    from tests.conftest import Sandbox

    home = tmp / "codex-home"
    home.mkdir()
    codex = install(tmp / "bin")
    settings = Settings(codex_home=home, db_path=tmp / "data" / "jobs.db", codex_command=(str(codex),), watch=False)
    return Sandbox(tmp, home, settings.db_path, codex, settings, JobEngine(settings, open_store(settings.db_path)))


def _cpu(proc: psutil.Process, children: bool = True) -> float:
    t = proc.cpu_times()
    return t.user + t.system + ((t.children_user + t.children_system) if children else 0.0)


def _tree_cpu(proc: psutil.Process) -> float:
    """The process, its reaped children, and its live descendants (ssh clients under way)."""
    total = _cpu(proc)
    for child in proc.children(recursive=True):
        try:
            total += _cpu(child)
        except psutil.Error:
            continue
    return total


def _screen(socket: str) -> str:
    return subprocess.run(["tmux", "-S", socket, "capture-pane", "-p", "-t", "bench"], capture_output=True, text=True).stdout


def _cold_ssh(fleet, name: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(["ssh", "-F", str(fleet.ssh_config), "-o", "ControlMaster=no", "-o", "ControlPath=none", name, "true"],
                   check=True, stdin=subprocess.DEVNULL, capture_output=True)
    return time.perf_counter() - t0


def _forget_connections(fleet) -> None:
    for proc in fleet.masters():
        try:
            proc.kill()
            proc.wait(5)
        except psutil.Error:
            pass


def run() -> list[Figure]:
    from tests.ssh_boxes import make_fleet, tear_down, why_not

    reason = why_not() or (None if shutil.which("tmux") else "tmux is not installed")
    if reason:
        return [Figure("dashboard over two boxes", f"not measured: {reason}", "", None)]
    tmp = Path(tempfile.mkdtemp(prefix="codexdash-bench-boxes-"))
    box = _sandbox(tmp)
    for key in ("CODEX_HOME", "CODEXDASH_DB", "CODEXDASH_CODEX", "CODEXDASH_CONFIG"):
        os.environ[key] = box.env()[key]
    os.environ["XDG_STATE_HOME"] = str(tmp / "state")
    fleet = make_fleet(box, ["box1", "box2"])
    socket = str(tmp / "tmux.sock")
    try:
        ids = {"local": [box.start(f"please SLEEP 900 here {i}").id for i in range(JOBS)]}
        for name in fleet.boxes:
            for i in range(JOBS):
                done = fleet.cli("--host", name, "start", f"please SLEEP 900 on {name} {i}")
                assert done.returncode == 0, done.stderr
        cold = sorted(_cold_ssh(fleet, name) for name in fleet.boxes for _ in range(3))
        _forget_connections(fleet)
        t0 = time.perf_counter()
        listed = fleet.cli("list", "--all-hosts")
        list_all = time.perf_counter() - t0
        assert listed.returncode == 0, listed.stderr
        _forget_connections(fleet)

        def launch(**extra: str) -> None:
            env = box.env(TERM="tmux-256color", **fleet.env(**extra))
            exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()
                               if k.startswith(("CODEX", "PATH", "HOME", "VIRTUAL", "XDG_")))
            command = f"cd {shlex.quote(str(tmp))} && exec env {exports} {shlex.quote(sys.executable)} -m codexdash"
            subprocess.run(["tmux", "-f", str(ROOT / "tests" / "tmux.conf"), "-S", socket, "new-session", "-d", "-s",
                            "bench", "-x", str(SIZE[0]), "-y", str(SIZE[1]), command], check=True,
                           env={**os.environ, "TERM": "xterm-256color"})

        def dashboard() -> psutil.Process:
            return psutil.Process(int(subprocess.run(["tmux", "-S", socket, "list-panes", "-t", "bench", "-F",
                                                      "#{pane_pid}"], capture_output=True, text=True).stdout.split()[0]))

        t0 = time.perf_counter()
        launch()
        local_at = both_at = None
        while time.perf_counter() - t0 < 60 and both_at is None:
            screen = _screen(socket)
            now = time.perf_counter() - t0
            if local_at is None and ids["local"][0] in screen:
                local_at = now
            if local_at is not None and all(f"{name} {JOBS}" in screen for name in fleet.boxes):
                both_at = now  # the status line counts every box's jobs: its rows are in
            time.sleep(0.005)
        dash = dashboard()
        time.sleep(5)  # the first looks settle
        sshds = [psutil.Process(b.sshd.pid) for b in fleet.boxes.values()]
        top = subprocess.Popen(["top", "-b", "-d", "1"], stdout=subprocess.DEVNULL)
        t_top = psutil.Process(top.pid)
        c0, b0, w0 = _tree_cpu(dash), sum(_tree_cpu(p) for p in sshds), time.monotonic()
        time.sleep(IDLE_SECONDS)
        wall = time.monotonic() - w0
        idle = 100 * (_tree_cpu(dash) - c0) / wall
        on_boxes = 100 * (sum(_tree_cpu(p) for p in sshds) - b0) / wall / len(sshds)
        top_cpu = 100 * _cpu(t_top, children=False) / wall
        top.terminate()
        top.wait(10)
        # The same dashboard over this box alone: the floor the table sets with its own rows.
        subprocess.run(["tmux", "-S", socket, "kill-session", "-t", "bench"], capture_output=True)
        launch(CODEXDASH_HOSTS="")
        wait_until = time.perf_counter() + 60
        while ids["local"][0] not in _screen(socket) and time.perf_counter() < wait_until:
            time.sleep(0.05)
        alone_dash = dashboard()
        time.sleep(5)
        a0, aw0 = _tree_cpu(alone_dash), time.monotonic()
        time.sleep(IDLE_SECONDS)
        alone = 100 * (_tree_cpu(alone_dash) - a0) / (time.monotonic() - aw0)
    finally:
        subprocess.run(["tmux", "-S", socket, "kill-server"], capture_output=True)
        from codexdash.store import Job
        from tests.conftest import end_marked_processes

        end_marked_processes({j.marker for j in Job.select()})
        tear_down(fleet)
        shutil.rmtree(tmp, ignore_errors=True)

    ms = lambda s: "not shown in 60 s" if s is None else f"{1000 * s:.0f} ms"  # noqa: E731
    figures = [
        Figure("boxes: first frame, this box's rows", ms(local_at), "", None),
        Figure("boxes: first frame, both boxes' rows (ssh cold)", ms(both_at), "", None,
               reference=f"one cold `ssh BOX true` {1000 * cold[len(cold) // 2]:.0f} ms (median of {len(cold)}); "
                         f"`codexdash list --all-hosts` cold {1000 * list_all:.0f} ms"),
        Figure("boxes: dashboard idle, 2 boxes + this one, 10 live jobs each", f"{idle:.2f} % of a core (with its ssh clients)",
               "≤ top", idle <= top_cpu, reference=f"`top -b -d 1` {top_cpu:.2f} %; the same dashboard over this box alone "
                                                f"(10 rows) {alone:.2f} %"),
        Figure("boxes: what the looks cost each box", f"{on_boxes:.2f} % of a core", "", None),
    ]
    return figures


if __name__ == "__main__":
    from common import report

    report(run())
