"""The dashboard over several boxes: this box and two boxes reached by ssh (a real sshd each,
its own PID namespace, store and CODEX_HOME), driven with Pilot as an operator drives it."""

from __future__ import annotations

import json

import pytest
from textual.widgets import Select, Static, TextArea

from codexdash.ui.app import CodexdashApp
from codexdash.ui.changes_screen import ChangesScreen
from codexdash.ui.columns import BY_KEY, UNREACHABLE
from codexdash.ui.kill_dialog import KillDialog
from codexdash.ui.start_dialog import StartDialog
from tests.conftest import wait_for
from tests.ssh_boxes import make_fleet, tear_down, why_not
from tests.ui_support import log_text, table_text, until

pytestmark = pytest.mark.skipif(why_not() is not None, reason=f"SSH boxes: {why_not()}")

SIZE = (160, 36)


@pytest.fixture
def fleet(sandbox):
    fleet = make_fleet(sandbox, ["box1", "box2"])
    yield fleet
    tear_down(fleet)


@pytest.fixture
def app(sandbox, fleet, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(fleet.runtime_dir))  # ssh's control sockets, as the CLI's
    sandbox.engine.settings = sandbox.settings.with_overrides(
        refresh_interval=0.2, hosts=tuple(fleet.boxes), ssh_command=("ssh", "-F", str(fleet.ssh_config)))
    return CodexdashApp(sandbox.engine, cwd=str(sandbox.root), host="testhost", state_path=tmp_path / "dashboard.json")


def start(fleet, host: str, prompt: str) -> dict:
    done = fleet.cli("--host", host, "start", "--json", prompt)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def status(fleet, host: str, job_id: str) -> str:
    return json.loads(fleet.cli("--host", host, "show", job_id, "--json").stdout)["status"]


def row(app, job_id: str):
    return next((r for r in app.table.rows_for(app.shown_views()) if r.job.id == job_id), None)


def status_line(app) -> str:
    return str(app.status_line.render())


async def select(pilot, app, job_id: str) -> None:
    app.table.select_soon(job_id)
    app._show_table()
    await until(pilot, lambda: app.table.selected_job_id == job_id, message=f"job {job_id} selected")


async def test_rows_of_every_box_with_their_host(sandbox, fleet, app):
    here = sandbox.start("SLEEP 60")
    one = start(fleet, "box1", "SLEEP 60")
    two = start(fleet, "box2", "SLEEP 60")
    assert one["pid"] == two["pid"]  # two boxes, one PID: told apart by their host
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: all(row(app, j) for j in (here.id, one["id"], two["id"])), message="rows of 3 boxes")
        assert "host" in app.table.shown_keys
        rows = {j: row(app, j) for j in (here.id, one["id"], two["id"])}
        assert [r.view.host for r in rows.values()] == ["local", "box1", "box2"]
        assert rows[one["id"]].job.pid == rows[two["id"]].job.pid and not rows[two["id"]].stale
        assert "box1" in table_text(app) and "box2" in table_text(app)
        await until(pilot, lambda: "local 1 box1 1 box2 1" in status_line(app), message="jobs per box")
        await pilot.press("b")  # every box → this box → box1 → box2 → every box
        assert [r.job.id for r in app.table.rows_for(app.shown_views())] == [here.id]
        await pilot.press("b", "b")
        assert [r.job.id for r in app.table.rows_for(app.shown_views())] == [two["id"]]
        assert "only box2:" in status_line(app)
        await pilot.press("b")
        assert len(app.table.rows_for(app.shown_views())) == 3


async def test_kill_on_a_box_from_the_dialog(fleet, app):
    one = start(fleet, "box1", "SLEEP 60")
    two = start(fleet, "box2", "SLEEP 60")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: row(app, one["id"]) and row(app, two["id"]), message="both boxes' rows")
        await select(pilot, app, two["id"])
        await pilot.press("k")
        dialog = await until(pilot, lambda: isinstance(app.screen, KillDialog) and app.screen.query(".dialog-title")
                             and app.screen, message="the kill dialog, composed")
        title = str(dialog.query_one(".dialog-title", Static).render())
        assert title == f"Kill job {two['id']} on box2?"
        checks = str(dialog.query_one("#kill-checks", Static).render())
        assert "✔ marker" in checks and "✔ start time" in checks and "✖" not in checks
        assert "as box2 ran them" in str(dialog.query_one("#kill-where", Static).render())
        await pilot.press("y")
        await until(pilot, lambda: row(app, two["id"]).job.status == "killed", timeout=30, message="killed, as box2 says")
        assert status(fleet, "box2", two["id"]) == "killed"
        assert fleet.boxes["box2"].process(two["pid"]) is None
        assert status(fleet, "box1", one["id"]) == "running"  # the same PID on box1 was never touched
        assert fleet.boxes["box1"].process(one["pid"]).is_running()


async def test_a_box_taken_down_is_greyed_and_comes_back(sandbox, fleet, app):
    two = start(fleet, "box2", "SLEEP 60")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: row(app, two["id"]), message="box2's row")
        box2 = fleet.boxes["box2"]
        box2.stop_sshd()
        await until(pilot, lambda: row(app, two["id"]).stale, timeout=30, message="box2's row greyed")
        r = row(app, two["id"])
        assert "unreachable" in r.stale and UNREACHABLE in table_text(app)
        name = BY_KEY["name"].cell(r, 20)
        assert any("dim" in str(span.style) for span in name.spans)  # greyed, every cell
        await until(pilot, lambda: "box2 ✖" in status_line(app), message="the box's trouble in the status line")
        assert "box2 ✖ unreachable" in status_line(app) and "last seen" in status_line(app)
        here = sandbox.start("SLEEP 60")  # this box's rows refresh all the while
        await until(pilot, lambda: row(app, here.id), message="a new local job while box2 is down")
        box2.start_sshd(box2.root / "sshd_config")
        await until(pilot, lambda: not row(app, two["id"]).stale, timeout=30, message="box2 back")
        assert "box2 1" in status_line(app) and row(app, two["id"]).job.status == "running"


async def test_start_follow_up_retry_and_changes_on_a_box(fleet, app):
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: app.looks["box1"].last_good, message="box1 answered")
        await pilot.press("n")
        dialog = await until(pilot, lambda: isinstance(app.screen, StartDialog) and app.screen, message="the start dialog")
        assert dialog.query_one("#host", Select).value == "local"  # this box by default
        dialog.query_one("#host", Select).value = "box1"
        await pilot.pause()
        dialog.query_one("#prompt", TextArea).text = "ECHO done on box1"
        await pilot.press("ctrl+s")
        listed = lambda: json.loads(fleet.cli("--host", "box1", "list", "--json").stdout)  # noqa: E731
        (job,) = wait_for(listed, timeout=30, message="the job on box1")
        assert job["cwd"] == str(fleet.boxes["box1"].root / "home")  # the box's home, not this box's directory
        await until(pilot, lambda: row(app, job["id"]) and row(app, job["id"]).job.status == "completed",
                    timeout=30, message="the job done, in the table")
        assert row(app, job["id"]).view.host == "box1"
        await select(pilot, app, job["id"])
        await pilot.press("c")
        dialog = await until(pilot, lambda: isinstance(app.screen, StartDialog) and app.screen, message="the follow-up dialog")
        dialog.query_one("#prompt", TextArea).text = "ECHO again"
        await pilot.press("ctrl+s")
        follow_up = wait_for(lambda: [j for j in listed() if j["parent_id"] == job["id"]], timeout=30, message="the follow-up")
        await until(pilot, lambda: row(app, follow_up[0]["id"]), timeout=30, message="the follow-up's row")
        await select(pilot, app, job["id"])
        await pilot.press("R")
        retry = wait_for(lambda: [j for j in listed() if j["retry_of"] == job["id"]], timeout=30, message="the retry on box1")
        await until(pilot, lambda: row(app, retry[0]["id"]), timeout=30, message="the retry's row")
        await select(pilot, app, job["id"])
        await pilot.press("d")
        screen = await until(pilot, lambda: isinstance(app.screen, ChangesScreen) and app.screen, message="the Changes view")
        assert "on box1" in str(screen.query_one(".dialog-title", Static).render())
        await until(pilot, lambda: "changed" in "\n".join(str(line.text) for line in screen.query_one("RichLog").lines),
                    timeout=30, message="box1's changes")


async def test_the_pane_follows_a_session_on_a_box(fleet, app):
    job = start(fleet, "box1", "STREAM 60")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: row(app, job["id"]), message="box1's row")
        await select(pilot, app, job["id"])
        await until(pilot, lambda: "step 2 of 60" in log_text(app), timeout=30, message="box1's session in the pane")
        await until(pilot, lambda: "step 4 of 60" in log_text(app), timeout=30, message="lines as they come")
        assert "› STREAM 60" in log_text(app) and "on box1" in str(app.pane.title_line.render())
        # The box's sshd goes away mid-follow (the job lives on there): said in the pane; once
        # the box answers again, the pane follows again.
        box1 = fleet.boxes["box1"]
        box1.stop_sshd()
        state = lambda: str(app.pane.state_line.render())  # noqa: E731
        await until(pilot, lambda: "connection was lost" in state(), timeout=30, message="the lost follow said")
        await until(pilot, lambda: "box1 ✖" in state(), timeout=30, message="the box's trouble in the pane")
        box1.start_sshd(box1.root / "sshd_config")
        await until(pilot, lambda: "connection was lost" not in state() and "box1 ✖" not in state(), timeout=40,
                    message="the pane following again")
        shown = len(log_text(app).splitlines())
        await until(pilot, lambda: len(log_text(app).splitlines()) > shown, timeout=30, message="new lines again")


class BoxProcesses:
    """Every `codexdash ... list` process seen on each box while it runs (a thread samples them
    until stopped): a look that runs a process of its own cannot slip between two samples for
    long, a watch is one process all along."""

    def __init__(self, fleet) -> None:
        import threading

        self.fleet = fleet
        self.seen: dict[str, dict[int, list[str]]] = {name: {} for name in fleet.boxes}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            for name, box in self.fleet.boxes.items():
                self.seen[name].update(box.commands("list"))
            self.samples += 1
            self._stop.wait(0.01)

    def stop(self) -> dict[str, dict[int, list[str]]]:
        self._stop.set()
        self._thread.join(timeout=30)
        return self.seen


@pytest.fixture
def quick_looks(monkeypatch):
    from codexdash.ui import box_polls

    monkeypatch.setattr(box_polls, "REMOTE_EVERY", 0.2)
    monkeypatch.setattr(box_polls, "HEARTBEAT", 0.5)


async def test_each_box_is_watched_by_one_process_there(fleet, app, quick_looks):
    one = start(fleet, "box1", "SLEEP 60")
    two = start(fleet, "box2", "SLEEP 60")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: row(app, one["id"]) and row(app, two["id"]), timeout=30, message="both boxes' rows")
        sampler = BoxProcesses(fleet)
        await until(pilot, lambda: sampler.samples > 0, message="a first sample")
        # Jobs start and end on both boxes; the rows follow, and heartbeats come between.
        three = start(fleet, "box1", "SLEEP 60")
        await until(pilot, lambda: row(app, three["id"]), timeout=30, message="a job started on box1, in the table")
        for host, job in (("box1", one), ("box2", two)):
            assert fleet.cli("--host", host, "kill", job["id"], "--yes").returncode == 0
            await until(pilot, lambda: row(app, job["id"]).job.status == "killed", timeout=30,
                        message=f"the end of the job on {host}, in the table")
        beats = {name: look.last_good for name, look in app.looks.items()}
        await until(pilot, lambda: all(look.last_good > beats[name] for name, look in app.looks.items()), timeout=30,
                    message="each box heard from again")
        seen = sampler.stop()
        assert row(app, three["id"]).job.status == "running" and not row(app, three["id"]).stale
    for name, processes in seen.items():
        # One process on each box saw it all: `list --watch`, never a `list` per look.
        (cmdline,) = processes.values()
        assert "--watch" in cmdline and "--no-external" not in cmdline and "--all" not in cmdline, (name, cmdline)
    # The dashboard gone, so are its watches: nothing is left running on the boxes.
    wait_for(lambda: not any(box.commands("list") for box in fleet.boxes.values()), timeout=30,
             message="the watches ended with the dashboard")


async def test_showing_all_history_or_no_external_sessions_watches_again_with_those(fleet, app, quick_looks):
    one = start(fleet, "box1", "SLEEP 60")
    box1 = fleet.boxes["box1"]
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: row(app, one["id"]), timeout=30, message="box1's row")
        watching = lambda *words: [c for c in box1.commands("list", "--watch").values() if all(w in c for w in words)]  # noqa: E731
        await pilot.press("a")
        await until(pilot, lambda: len(box1.commands("list", "--watch")) == 1 and watching("--all"), timeout=30,
                    message="box1 watched with --all")
        await pilot.press("x")
        await until(pilot, lambda: len(box1.commands("list", "--watch")) == 1 and watching("--all", "--no-external"),
                    timeout=30, message="box1 watched with --all --no-external")
        await pilot.press("a", "x")
        await until(pilot, lambda: len(box1.commands("list", "--watch")) == 1 and watching() and not watching("--all")
                    and not watching("--no-external"), timeout=30, message="box1 watched as at first")
        assert row(app, one["id"]) and not row(app, one["id"]).stale


async def test_a_box_too_old_to_watch_is_asked_at_each_look(sandbox, fleet, tmp_path, quick_looks):
    from tests.test_boxes import old_codexdash

    sandbox.engine.settings = sandbox.settings.with_overrides(
        refresh_interval=0.2, hosts=("box1",), ssh_command=("ssh", "-F", str(fleet.ssh_config)),
        remote_command=str(old_codexdash(tmp_path)))
    app = CodexdashApp(sandbox.engine, cwd=str(sandbox.root), host="testhost", state_path=tmp_path / "dashboard.json")
    one = start(fleet, "box1", "SLEEP 60")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: row(app, one["id"]), timeout=30, message="the old box's row")
        assert app.looks["box1"].poll_until > 0  # its watch was refused: it is polled
        sampler = BoxProcesses(fleet)
        assert fleet.cli("--host", "box1", "kill", one["id"], "--yes").returncode == 0
        await until(pilot, lambda: row(app, one["id"]).job.status == "killed", timeout=30, message="the job's end, polled")
        looks = sampler.stop()["box1"]
        assert not row(app, one["id"]).stale
    assert looks and not any("--watch" in cmdline for cmdline in looks.values())


async def test_a_watch_gone_silent_greys_the_box_and_is_opened_again(sandbox, fleet, tmp_path):
    import os
    import signal

    # A short connect timeout (the operator's own ssh option): heartbeats every second, greyed
    # after 3 s of silence, the watch given up on and opened again after 6.
    sandbox.engine.settings = sandbox.settings.with_overrides(
        refresh_interval=0.2, hosts=("box1",), ssh_command=("ssh", "-F", str(fleet.ssh_config), "-o", "ConnectTimeout=3"))
    app = CodexdashApp(sandbox.engine, cwd=str(sandbox.root), host="testhost", state_path=tmp_path / "dashboard.json")
    one = start(fleet, "box1", "SLEEP 60")
    box1 = fleet.boxes["box1"]
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: row(app, one["id"]), timeout=30, message="box1's row")
        assert app.looks["box1"].timeout == 3
        (silenced,) = wait_for(lambda: list(box1.commands("list", "--watch")), message="box1's watch")
        os.kill(silenced, signal.SIGSTOP)  # the box's watch says nothing more, its connection stays
        try:
            await until(pilot, lambda: (row(app, one["id"]).stale or "").startswith("no answer for"), timeout=30,
                        message="box1 greyed: no heartbeat")
            await until(pilot, lambda: any(pid != silenced for pid in box1.commands("list", "--watch")), timeout=30,
                        message="a new watch on box1")
            await until(pilot, lambda: not row(app, one["id"]).stale, timeout=30, message="box1 answering again")
        finally:
            os.kill(silenced, signal.SIGCONT)
        # The silent one, going on, finds its reader gone and ends.
        wait_for(lambda: silenced not in box1.commands("list", "--watch"), timeout=30, message="the silent watch ended")
        assert len(box1.commands("list", "--watch")) == 1
