"""The dashboard driven with Pilot over real fake-codex jobs and a real database file."""

from __future__ import annotations

import json
import sqlite3
import threading

import psutil
import pytest
from textual.widgets import Button, Input, Static, TextArea
from textual.widgets._toast import Toast

from codexdash.errors import StoreError
from codexdash.store import Job, JobEvent, JobStatus
from codexdash.ui.app import CodexdashApp
from codexdash.ui.help_screen import HelpScreen
from codexdash.ui.kill_dialog import KillDialog
from codexdash.ui.start_dialog import StartDialog
from codexdash.ui.messages import JobsRefreshed
from tests.conftest import wait_for
from tests.ui_support import add_fixed_jobs, log_text, table_text, until

SIZE = (140, 36)


@pytest.fixture
def app(sandbox):
    sandbox.engine.settings = sandbox.settings.with_overrides(refresh_interval=0.2, interrupt_grace=2.0)
    return CodexdashApp(sandbox.engine, cwd=str(sandbox.root), host="testhost")


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_table_shows_a_started_job_and_its_end(sandbox, app):
    job = sandbox.start("ECHO finished soon SLEEP 1")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: job.id in table_text(app), message="the job in the table")
        assert "● running" in table_text(app)
        await until(pilot, lambda: "✔ completed" in table_text(app), message="the completed state")
        status = str(app.status_line.render())
        assert "testhost" in status and "completed 1" in status


async def test_pane_follows_appended_lines(sandbox, app):
    job = sandbox.start("STREAM 30")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.pane.job_id == job.id and app.pane.path, message="the pane to open the file")
        await until(pilot, lambda: "step 3 of 30" in log_text(app), message="live lines in the pane")
        assert "› STREAM 30" in log_text(app)
        await pilot.press("r")  # raw JSON
        await until(pilot, lambda: "▸ response_item · message" in log_text(app), message="raw records, one at a time")
        assert '\n  "role": "assistant",\n' in log_text(app)  # pretty-printed, indented
        await pilot.press("r")
        assert "• working… step 1 of 30" in log_text(app)


async def test_follow_pauses_when_scrolled_up_and_f_toggles(sandbox, app):
    job = sandbox.start("STREAM 60")
    async with app.run_test(size=(100, 24)) as pilot:
        await until(pilot, lambda: "step 12 of 60" in log_text(app), timeout=30, message="a long pane")
        log = app.pane.log_view
        await pilot.press("tab")
        assert app.focused is log
        await pilot.press("home")
        await until(pilot, lambda: log.scroll_y == 0, message="scrolled to the top")
        before = log.scroll_y
        await until(pilot, lambda: "step 14 of 60" in log_text(app), message="more lines")
        assert log.scroll_y == before  # not dragged down while the user reads
        assert "paused: scrolled up" in str(app.pane.state_line.render())
        await pilot.press("f")
        assert app.pane.follow is False
        await pilot.press("f")
        await until(pilot, lambda: log.is_vertical_scroll_end, message="back at the bottom")
        del job


def start_error(app) -> str:
    """The error shown in the open start dialog ("" when none is open or it shows none)."""
    screen = app.screen
    if not isinstance(screen, StartDialog) or not screen.is_mounted:
        return ""
    return str(screen.query_one("#start-error", Static).render())


async def test_start_dialog_validates_and_records_nothing_on_error(sandbox, app):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        dialog = await until(pilot, lambda: isinstance(app.screen, StartDialog) and app.screen, message="the dialog")
        assert app.focused is dialog.query_one("#prompt", TextArea)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "prompt is empty" in start_error(app), message="the dialog back with the error")
        dialog = app.screen
        assert app.focused is dialog.query_one("#prompt", TextArea)
        await pilot.press(*"ECHO from the dialog")
        dialog.query_one("#cwd", Input).value = "/no/such/dir"
        dialog.query_one("#extra", Input).value = "--color 'never mind'"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "does not exist" in start_error(app), message="the dialog back with the error")
        dialog = app.screen  # filled in as typed
        assert dialog.query_one("#prompt", TextArea).text == "ECHO from the dialog"
        assert dialog.query_one("#extra", Input).value == "--color 'never mind'"
        assert Job.select().count() == 0
        dialog.query_one("#cwd", Input).value = str(sandbox.root)
        dialog.query_one("#extra", Input).value = "'unclosed"
        await pilot.press("ctrl+s")
        assert "extra arguments" in start_error(app) and app.screen is dialog  # told at once, in the dialog
        dialog.query_one("#extra", Input).value = ""
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not isinstance(app.screen, StartDialog), message="the dialog to close")
        (job,) = await until(pilot, lambda: list(Job.select()), message="the job recorded")
        assert job.prompt == "ECHO from the dialog" and job.cwd == str(sandbox.root)
        await until(pilot, lambda: job.id in table_text(app), message="the new job in the table")


async def test_start_dialog_escape_cancels(sandbox, app):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, StartDialog), message="the dialog")
        await pilot.press(*"STREAM 5")
        seen = app.refreshes
        await until(pilot, lambda: app.refreshes >= seen + 2, message="refreshes while the dialog is open")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, StartDialog), message="the dialog to close")
        assert Job.select().count() == 0


def kill_outcomes(job_id: str) -> list[str]:
    """The job's kill attempts in the audit trail, as the CLI's kill writes them."""
    events = JobEvent.select().where((JobEvent.job == job_id) & (JobEvent.kind == "kill")).order_by(JobEvent.id)
    return [e.detail_data.get("outcome") for e in events]


def kills_under_way(app) -> bool:
    return any(w.group == "kill" and not w.is_finished for w in app.workers)


def record_toasts(app) -> list[str]:
    """Every notification the app raises from now on (they expire from the screen)."""
    told: list[str] = []
    notify = app.notify

    def recording(message, **kwargs):
        told.append(message)
        notify(message, **kwargs)

    app.notify = recording
    return told


async def test_kill_dialog_shows_checks_cancel_keeps_running_confirm_stops(sandbox, app):
    job = sandbox.start("please SLEEP 60")
    told = record_toasts(app)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: app.table.selected_job_id == job.id, message="the job selected")
        await pilot.press("k")
        dialog = await until(pilot, lambda: isinstance(app.screen, KillDialog) and app.screen, message="the kill dialog")
        checks = str(dialog.query_one("#kill-checks", Static).render())
        for name in ("process", "start time", "marker", "command", "user"):
            assert f"✔ {name}" in checks
        assert app.focused is dialog.query_one("#cancel", Button)
        assert "SIGINT" in str(dialog.query_one("#kill-plan", Static).render())
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, KillDialog), message="the dialog to close")
        await until(pilot, lambda: kill_outcomes(job.id) and not kills_under_way(app), message="the cancellation recorded")
        assert kill_outcomes(job.id) == ["cancelled"]  # one event, as `codexdash kill` answered "n" writes
        assert alive(job.pid) and Job.get_by_id(job.id).status == JobStatus.RUNNING
        await pilot.press("k")
        await until(pilot, lambda: isinstance(app.screen, KillDialog), message="the kill dialog again")
        await pilot.press("y")
        await until(pilot, lambda: Job.get_by_id(job.id).status == JobStatus.KILLED, message="the kill")
        await until(pilot, lambda: "✝ killed" in table_text(app), message="the killed state in the table")
        assert not alive(job.pid)
        await until(pilot, lambda: not kills_under_way(app), message="the kill worker to end")
        seen = app.refreshes
        await until(pilot, lambda: app.refreshes >= seen + 2, message="refreshes after the kill")
        about = [m for m in told if job.id in m]
        assert len(about) == 1 and "killed after" in about[0], about
        assert kill_outcomes(job.id) == ["cancelled", "stopped"]


async def test_refused_kill_offers_no_kill_and_never_signals(sandbox, app):
    job = sandbox.start("EXEC now")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: psutil.Process(job.pid).name() == "sleep", message="the exec")
        await until(pilot, lambda: app.table.selected_job_id == job.id, message="the job selected")
        await pilot.press("k")
        dialog = await until(pilot, lambda: isinstance(app.screen, KillDialog) and app.screen, message="the kill dialog")
        assert "✖ marker" in str(dialog.query_one("#kill-checks", Static).render())
        assert "Refused" in str(dialog.query_one("#kill-refused", Static).render())
        assert not dialog.query("#do-kill")
        await pilot.press("y")  # no effect: nothing to confirm
        assert isinstance(app.screen, KillDialog)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, KillDialog) and not kills_under_way(app), message="the dialog to close")
        assert kill_outcomes(job.id) == ["refused"]  # one event, as `codexdash kill` writes
        assert alive(job.pid)
        assert Job.get_by_id(job.id).status == JobStatus.RUNNING


async def test_filter_sort_history_and_help(sandbox, app):
    add_fixed_jobs(sandbox.engine.store)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.table.row_count == 5, message="the fixed jobs")
        await pilot.press("slash", *"SLEEP 20")
        await until(pilot, lambda: app.table.row_count == 2, message="the filter")
        await pilot.press("escape")
        await until(pilot, lambda: app.table.row_count == 5, message="the filter cleared")
        await pilot.press("s")  # Started (the sort) is not shown at this width: the header cursor is on Name
        assert app.table.sort_spec == ("name", False)
        assert app.table.selected_job_id is not None
        await pilot.press("question_mark")
        await until(pilot, lambda: "HelpScreen" in type(app.screen).__name__, message="help")
        await pilot.press("escape")
        await pilot.press("a")
        assert app.all_history


async def test_hostile_prompt_is_shown_as_text(sandbox, app):
    add_fixed_jobs(sandbox.engine.store)
    app.saved.widths = {"name": 60}  # the whole of its name (a title from the prompt)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.table.row_count == 5, message="the fixed jobs")
        text = table_text(app)
        assert "[bold]not markup[/] ^[[31m" in text


async def test_quit_leaves_jobs_running(sandbox, app):
    job = sandbox.start("STREAM 30")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: job.id in table_text(app), message="the job")
        await pilot.press("q")
    assert alive(job.pid)


async def test_search_in_the_pane_and_every_action_in_the_palette(sandbox, app):
    add_fixed_jobs(sandbox.engine.store)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "completed: hi from mock" in log_text(app), message="the session in the pane")
        await pilot.press("tab")
        await pilot.press("slash")
        assert app.focused is app.pane.search_box
        await pilot.press(*"hi from", "enter")
        assert "“hi from” 1/" in str(app.pane.state_line.render())
        assert "paused by search" in str(app.pane.state_line.render())  # reading a match: not dragged to the end
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for action in ("Start a job", "Kill the selected job", "Toggle follow", "Toggle raw JSON", "Toggle all history",
                       "Sort by a chosen column", "Filter jobs / search the session", "Keys", "Quit"):
            assert action in titles
        assert len(titles) == len(set(titles)), titles  # no entry twice (Textual's own Keys and Quit give way)


async def test_a_job_that_ends_is_announced(sandbox, app):
    job = sandbox.start("FAIL after a moment SLEEP 1")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: job.id in table_text(app), message="the job")
        await until(pilot, lambda: any(job.id in n.message and "failed" in n.message for n in app._notifications),
                    message="a notification of the failure")


def rendered_table(app) -> str:
    return "\n".join(app.table.render_line(y).text for y in range(app.table.size.height))


async def test_changed_cells_are_redrawn_on_screen(sandbox, app):
    go_on = sandbox.root / "go-on"
    job = sandbox.start(f"UNTIL {go_on} ECHO soon done")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "● running" in rendered_table(app), message="the running row drawn")
        go_on.touch()
        await until(pilot, lambda: "✔ completed" in rendered_table(app), message="the completed row drawn")
        assert "● running" not in rendered_table(app)
        del job


# ---- every string a user or Codex writes reaches the screen as text ------------------------------

MARKUP = ["[/nope]", "[bold]x", "[@click=app.quit]x[/]"]


def toast_texts(app) -> list[str]:
    """The notifications as drawn on the current screen."""
    return [str(t.render()) for t in app.screen.query(Toast)]


async def test_markup_in_the_pane_search_is_searched_for_as_text(sandbox, app):
    add_fixed_jobs(sandbox.engine.store)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: "completed: hi from mock" in log_text(app), message="the session in the pane")
        await pilot.press("tab", "slash")
        for text in MARKUP:
            app.pane.search_box.value = ""
            await pilot.press(*text, "enter")
            wanted = f"not found in the session: {text}"
            await until(pilot, lambda: any(wanted in t for t in toast_texts(app)), message=f"the toast for {text}")
        assert app.is_running


async def test_markup_in_the_filter_is_matched_and_shown_as_text(sandbox, app):
    add_fixed_jobs(sandbox.engine.store)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: app.table.row_count == 5, message="the fixed jobs")
        for text in MARKUP:
            await pilot.press("slash", *text)
            await until(pilot, lambda: f"filter:{text}" in str(app.status_line.render()), message=f"the filter {text}")
            await pilot.press("enter")
            await until(pilot, lambda: app.focused is app.table, message="the table focused again")
        await pilot.press("slash", *"[bold]not markup[/]", "enter")
        await until(pilot, lambda: app.table.row_count == 1, message="the job whose prompt has brackets")
        assert app.is_running


async def test_markup_in_the_start_dialog_and_its_errors_is_text(sandbox, app):
    app.saved.widths = {"name": 60}  # the whole of its name (a title from the prompt)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("n")
        dialog = await until(pilot, lambda: isinstance(app.screen, StartDialog) and app.screen, message="the dialog")
        await pilot.press(*"ECHO [@click=app.quit]x[/] SLEEP 1")
        dialog.query_one("#cwd", Input).value = "[/nope]"
        dialog.query_one("#extra", Input).value = "-c '[bold]x'"
        await pilot.press("ctrl+s")
        error = await until(pilot, lambda: start_error(app), message="the dialog back with the error")
        assert "working directory [/nope] does not exist" in error
        assert Job.select().count() == 0
        dialog = app.screen
        assert dialog.query_one("#extra", Input).value == "-c '[bold]x'"
        dialog.query_one("#extra", Input).value = ""
        dialog.query_one("#cwd", Input).value = str(sandbox.root)
        dialog.query_one("#model", Input).value = "[bold]x"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not isinstance(app.screen, StartDialog), message="the dialog to close")
        job = await until(pilot, lambda: Job.get_or_none(), message="the job recorded")
        assert job.prompt == "ECHO [@click=app.quit]x[/] SLEEP 1" and job.model == "[bold]x"
        await until(pilot, lambda: "[@click=app.quit]x[/]" in table_text(app), message="the prompt in the table")
        await until(pilot, lambda: any(f"job {job.id}" in t and "[@click=app.quit]x[/]" in t for t in toast_texts(app)),
                    message="the end announced with the prompt as text")
        assert app.is_running


# ---- the screen never waits on the store ------------------------------------------------------------


class WriteLock:
    """Another writer holding the database (BEGIN IMMEDIATE) until released, or until a deadline
    (where the dashboard waited on it, the test fails instead of hanging)."""

    def __init__(self, path, deadline: float = 10.0) -> None:
        self.db = sqlite3.connect(path, timeout=0, check_same_thread=False, isolation_level=None)
        self.db.execute("BEGIN IMMEDIATE")
        self.released = threading.Event()
        self._timer = threading.Timer(deadline, self.release)
        self._timer.start()

    def release(self) -> None:
        if not self.released.is_set():
            self.released.set()
            self.db.execute("ROLLBACK")
            self._timer.cancel()


async def test_a_start_waiting_on_a_locked_database_leaves_the_screen_answering(sandbox, app):
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: app.refreshes >= 1, message="the first refresh")
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, StartDialog), message="the dialog")
        await pilot.press(*"ECHO while locked")  # typed first: the lock's deadline is for the start alone
        lock = WriteLock(sandbox.db_path)
        try:
            await pilot.press("ctrl+s")
            await until(pilot, lambda: not isinstance(app.screen, StartDialog), message="the dialog to close")
            await pilot.press("question_mark")
            await until(pilot, lambda: isinstance(app.screen, HelpScreen), message="the help, while the store is locked")
            assert not lock.released.is_set(), "the screen waited for the lock"
            assert Job.select().count() == 0
        finally:
            lock.release()
        await pilot.press("escape")
        job = await until(pilot, lambda: Job.get_or_none(), message="the job recorded once the lock is gone")
        await until(pilot, lambda: job.id in table_text(app), message="the job in the table")


async def test_a_kill_waiting_on_a_locked_database_leaves_the_screen_answering(sandbox, app):
    job = sandbox.start("please SLEEP 60")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: app.table.selected_job_id == job.id, message="the job selected")
        lock = WriteLock(sandbox.db_path)
        try:
            await pilot.press("k")
            await until(pilot, lambda: isinstance(app.screen, KillDialog), message="the kill dialog")
            await pilot.press("y")
            await until(pilot, lambda: not isinstance(app.screen, KillDialog), message="the dialog to close")
            await pilot.press("question_mark")
            await until(pilot, lambda: isinstance(app.screen, HelpScreen), message="the help, while the store is locked")
            assert not lock.released.is_set(), "the screen waited for the lock"
            assert alive(job.pid)
        finally:
            lock.release()
        await pilot.press("escape")
        await until(pilot, lambda: "✝ killed" in table_text(app), message="the kill once the lock is gone")
        assert kill_outcomes(job.id) == ["stopped"]


async def test_markup_in_engine_errors_is_shown_as_text(sandbox, app, monkeypatch):
    def failing(*_args, **_kwargs):
        raise StoreError("cannot write the job database /srv/[/nope]/jobs.db: [@click=app.quit]x[/]")

    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: app.refreshes >= 1, message="the first refresh")
        monkeypatch.setattr(sandbox.engine, "start", failing)
        await pilot.press("n", *"ECHO [bold]x", "ctrl+s")
        await until(pilot, lambda: any("job not started: cannot write the job database /srv/[/nope]/jobs.db: "
                                       "[@click=app.quit]x[/]" in t for t in toast_texts(app)), message="the start's error")
        monkeypatch.setattr(sandbox.engine, "refresh", failing)
        await until(pilot, lambda: any(t.startswith("cannot write the job database /srv/[/nope]") for t in toast_texts(app)),
                    message="the refresh's error")
        assert app.is_running


async def test_the_dashboard_finishes_a_kill_whose_codexdash_died_and_keeps_answering(sandbox, app):
    started = json.loads(sandbox.cli("start", "--json", "IGNORE_SIGNALS STREAM 120").stdout)
    wait_for(lambda: sandbox.engine.session_file(Job.get_by_id(started["id"])), message="the session file")
    crashed = sandbox.cli("kill", started["id"], "--yes", CODEXDASH_FAULT="kill-after-signal")
    assert crashed.returncode == 137
    job = Job.get_by_id(started["id"])
    app.engine.settings = app.engine.settings.with_overrides(interrupt_grace=5.0)  # a kill that takes a while
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        # The refresh takes the kill over and escalates for seconds: the screen answers meanwhile.
        await until(pilot, lambda: "taken over" in kill_outcomes(job.id), message="the kill taken over")
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), message="the help, during the kill")
        assert Job.get_by_id(job.id).status == JobStatus.STOPPING
        await pilot.press("escape")
        await until(pilot, lambda: "✝ killed" in table_text(app), message="the kill finished")
        assert kill_outcomes(job.id) == ["taken over", "stopped"]
        assert not alive(job.pid)


async def test_the_changes_view_shows_what_the_selected_job_changed(sandbox, app, tmp_path):
    import subprocess

    from textual.widgets import RichLog

    from codexdash.ui.changes_screen import ChangesScreen

    repo = tmp_path / "repo"
    repo.mkdir()
    for args in (["init", "-q"], ["config", "user.email", "t@example.com"], ["config", "user.name", "t"]):
        subprocess.run(["git", *args], cwd=repo, check=True)
    (repo / "a.txt").write_text("old line\n")
    subprocess.run(["git", "add", "."], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "base"], cwd=repo, check=True)
    job = sandbox.start("PATCH a.txt new [bold]line\nECHO done", cwd=repo)
    wait_for(lambda: sandbox.engine.refresh([job]) and not job.is_live, message="the job to end")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: job.id in table_text(app), message="the job")
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ChangesScreen), message="the Changes view")
        text = lambda: "\n".join(line.text for line in app.screen.query_one(RichLog).lines)  # noqa: E731
        await until(pilot, lambda: "a.txt" in text() and "+new [bold]line" in text(), message="the diff of a.txt")
        await pilot.press("s")  # the files only
        await until(pilot, lambda: "+new [bold]line" not in text() and "a.txt" in text(), message="the files only")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ChangesScreen), message="the view closed")


async def test_a_poll_that_ends_while_the_dashboard_closes_draws_nothing(sandbox, app):
    job = sandbox.start("ECHO hi")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.table.selected_job_id == job.id, message="the job shown")
        views = app.views
        app.pane.log_view.find("hi")  # a search open: showing another job searches it anew
    app.pane.job_id = None  # as if another job were selected when the answer came
    app.on_jobs_refreshed(JobsRefreshed(views))  # no exception: the screen is gone, nothing is drawn


async def test_an_empty_dashboard_refreshes_without_building_its_footer_again(sandbox, app):
    from textual.widgets._footer import FooterKey

    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app._polls >= 2 and app.footer.query(FooterKey), message="the first polls")
        await pilot.pause()  # the start's own rebuilds done (the focus given refreshes the bindings after a frame)
        keys = list(app.footer.query(FooterKey))
        polls = app._polls
        await until(pilot, lambda: app._polls >= polls + 5, message="five more polls")
        await pilot.pause()
        # Each refresh showed "no job" in the pane; opening it again reset its search, which
        # had the footer composed anew every second.
        assert list(app.footer.query(FooterKey)) == keys


async def test_toasts_that_went_leave_nothing_they_drew_behind(app):
    """Each job's end is a toast: gone after a few seconds, it must take what it drew with it
    (Textual's cache of background colours held each removed widget's lines, up to 1,024)."""
    import gc
    import weakref

    async with app.run_test(size=SIZE, notifications=True) as pilot:
        for i in range(3):
            app.notify(f"job {i} completed", timeout=0.5)
        await until(pilot, lambda: len(app.screen.query(Toast)) == 3 and all(
            t._styles_cache._cache for t in app.screen.query(Toast)), message="three toasts drawn")
        drawn = [weakref.ref(t._styles_cache) for t in app.screen.query(Toast)]
        await until(pilot, lambda: not app.screen.query(Toast), message="the toasts gone")
        # The hidden rack keeps its last toasts until it is shown again: a later toast, as the
        # next job's end. Removing widgets takes a few steps: each look after a collection.
        app.notify("job 3 completed", timeout=0.5)
        await until(pilot, lambda: gc.collect() >= 0 and all(ref() is None for ref in drawn),
                    timeout=10, message="what the gone toasts drew to be freed")
