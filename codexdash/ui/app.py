"""The dashboard: wires the jobs table, the session pane and the dialogs to the job engine.

Every engine call (polling processes, the store, starting, verifying, killing) runs in a worker
thread; results come back as messages, so the screen never waits on I/O or on a locked store.
Dialogs only ask: the app acts on their answers. Every text shown comes from `tell` or a
`Text`: never read as markup, control characters made visible.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from collections import Counter
from dataclasses import replace
from pathlib import Path

import peewee
from rich.text import Text
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.notifications import SeverityLevel
from textual.widgets import DataTable, Footer, Input, Static

from codexdash import format as fmt
from codexdash.errors import BadInput, CodexdashError
from codexdash.jobs import JobEngine, JobView, StartRequest
from codexdash.kill import KillFlow
from codexdash.render import sanitize
from codexdash.store import JobStatus
from codexdash.ui.help_screen import HelpScreen
from codexdash.ui.jobs_table import SORTS, JobsTable
from codexdash.ui.kill_dialog import KillDialog
from codexdash.ui.messages import JobsRefreshed, KillDone, KillVerified, StartDone
from codexdash.ui.session_pane import SessionLog, SessionPane
from codexdash.ui.start_dialog import StartDialog
from codexdash.ui.styles import STATUS_STYLES

NARROW_WIDTH = 110  # below this the session pane goes under the table
# What a worker may meet in the core; shown to the user, never a crash.
ENGINE_ERRORS = (CodexdashError, peewee.PeeweeException, sqlite3.Error, OSError)


class CodexdashApp(App):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses may live anywhere
    TITLE = "codexdash"
    ENABLE_COMMAND_PALETTE = True

    BINDINGS = [
        Binding("n", "start_job", "New"),
        Binding("k,delete", "kill_job", "Kill"),
        Binding("tab", "toggle_focus", "Focus", show=False, priority=False),
        Binding("f", "toggle_follow", "Follow"),
        Binding("r", "toggle_raw", "Raw"),
        Binding("slash", "find", "Filter/Search"),
        Binding("a", "toggle_history", "All"),
        Binding("s", "cycle_sort", "Sort"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, engine: JobEngine, title: str | None = None, cwd: str | None = None, host: str | None = None) -> None:
        super().__init__()
        self.engine = engine
        self.start_cwd = cwd or os.getcwd()
        self.host = host or socket.gethostname()
        if title:
            self.title = title
        self.views: list[JobView] = []
        self.all_history = False
        self.sort = SORTS[0]
        self.query_text = ""
        self._known_status: dict[str, str] = {}
        self._refreshing = False  # a poll is under way
        self._refresh_again = False  # asked for while one was: it runs once more
        self.refreshes = 0  # refresh cycles shown so far
        self._status_text: Text | None = None
        self._starting = 0  # starts under way in workers
        self._killing: set[str] = set()  # jobs this dashboard is killing: their end is told once, by the kill

    def compose(self) -> ComposeResult:
        # Held, not queried: while a dialog is open, queries look at the dialog's screen.
        self.status_line = Static("", id="status")
        self.table = JobsTable(id="jobs")
        self.filter_box = Input(placeholder="filter jobs (enter: keep, escape: clear)", id="filter", classes="hidden")
        self.pane = SessionPane(id="session-pane")
        yield self.status_line
        with Horizontal(id="main"):
            with Vertical(id="table-box"):
                yield self.table
                yield self.filter_box
            yield self.pane
        yield Footer()

    def on_mount(self) -> None:
        self.table.focus()
        self._apply_layout(self.size.width)
        self.refresh_jobs()
        self.set_interval(self.engine.settings.refresh_interval, self.refresh_jobs)

    def on_resize(self, event) -> None:
        self._apply_layout(event.size.width)

    def _apply_layout(self, width: int) -> None:
        self.screen.set_class(width < NARROW_WIDTH, "narrow")

    # ---- the live table ---------------------------------------------------------------------

    def refresh_jobs(self) -> None:
        if self._refreshing:  # polls are never stacked: this one runs again when done
            self._refresh_again = True
            return
        self._refreshing = True
        self._poll()

    @work(thread=True, group="refresh")
    def _poll(self) -> None:
        try:
            while True:
                self._refresh_again = False
                try:
                    views = self.engine.refresh(all_history=self.all_history)
                    self.post_message(JobsRefreshed(views))
                except ENGINE_ERRORS as exc:
                    # Shown, and tried again at the next refresh: the dashboard stays up.
                    self.post_message(JobsRefreshed(self.views, error=str(exc)))
                if not self._refresh_again:
                    break
        finally:
            self._refreshing = False

    def on_jobs_refreshed(self, message: JobsRefreshed) -> None:
        if message.error:
            self.tell(message.error, severity="error")
        self.views = message.views
        for v in message.views:
            before = self._known_status.get(v.job.id)
            if before in JobStatus.LIVE and v.job.status in JobStatus.FINISHED and v.job.id not in self._killing:
                self._announce_end(v)
            self._known_status[v.job.id] = v.job.status
        self._show_table()
        self.refreshes += 1

    def _announce_end(self, v: JobView) -> None:
        j = v.job
        severity = "information" if j.status in (JobStatus.COMPLETED, JobStatus.KILLED) else "error"
        self.tell(f"job {j.id} {j.status.replace('_', ' ')}: {fmt.one_line(j.prompt, 40)}", severity=severity)

    def tell(self, message: str, severity: SeverityLevel = "information") -> None:
        """A toast showing `message` as written: never markup, control characters made visible."""
        self.notify(sanitize(message), severity=severity, markup=False)

    def _show_table(self) -> None:
        self.table.show(self.views, query=self.query_text, sort=self.sort)
        self._update_status()
        self._show_selected()

    def _update_status(self) -> None:
        counts = Counter(v.job.status for v in self.views)
        text = Text()
        if self.title != "codexdash":
            text.append(f" {self.title} ", style="reverse")
        text.append(f" {self.host} ", style="bold")
        text.append(f" CODEX_HOME {sanitize(str(self.engine.settings.codex_home))} ", style="dim")
        for status in [*JobStatus.LIVE, *JobStatus.FINISHED]:
            if counts.get(status):
                text.append(f" {fmt.status_label(status)} {counts[status]} ", style=STATUS_STYLES.get(status, ""))
        if self._starting:
            text.append(f" starting {self._starting} job(s)… ", style="yellow")
        text.append(f" sort:{self.sort}", style="dim")
        text.append("  all history" if self.all_history else "  recent", style="dim")
        if self.query_text:
            text.append(f"  filter:{sanitize(self.query_text)}", style="yellow")
        if text != self._status_text:  # redrawn only when it changes
            self._status_text = text
            self.status_line.update(text)

    def _selected_view(self) -> JobView | None:
        jid = self.table.selected_job_id
        return next((v for v in self.views if v.job.id == jid), None)

    def _show_selected(self) -> None:
        self.pane.show(self._selected_view(), self.views)

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._show_selected()

    # ---- actions ------------------------------------------------------------------------

    def action_focus_pane(self) -> None:
        self.pane.log_view.focus()

    def action_toggle_focus(self) -> None:
        if self.focused is self.table:
            self.pane.log_view.focus()
        else:
            self.table.focus()

    def action_toggle_follow(self) -> None:
        self.pane.follow = not self.pane.follow

    def action_toggle_raw(self) -> None:
        self.pane.raw = not self.pane.raw

    def action_toggle_history(self) -> None:
        self.all_history = not self.all_history
        self.tell("showing every job ever recorded" if self.all_history else "showing running and recent jobs")
        self.refresh_jobs()

    def action_cycle_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self._show_table()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_find(self) -> None:
        if isinstance(self.focused, SessionLog):
            self.pane.open_search()
            return
        box = self.filter_box
        box.remove_class("hidden")
        box.value = self.query_text
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.query_text = event.value.strip()
            self._show_table()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            event.input.add_class("hidden")
            self.table.focus()

    def on_key(self, event) -> None:
        if event.key != "escape":
            return
        if self.focused is not None and self.focused.id == "filter":
            self.query_text = ""
            self.focused.value = ""
            self.focused.add_class("hidden")
            self.table.focus()
            self._show_table()
            event.stop()
        elif self.focused is not None and self.focused.id == "pane-search":
            self.pane.close_search()
            event.stop()
        elif isinstance(self.focused, SessionLog):
            self.table.focus()
            event.stop()

    # ---- starting a job: the dialog asks, a worker starts -----------------------------------------

    def action_start_job(self) -> None:
        self._ask_start()

    def _ask_start(self, request: StartRequest | None = None, error: str = "") -> None:
        self.push_screen(StartDialog(self.start_cwd, request, error), self._start_answered)

    def _start_answered(self, request: StartRequest | None) -> None:
        if request is None:
            return
        self._starting += 1
        self._update_status()
        self._start(request)

    @work(thread=True, group="start")
    def _start(self, request: StartRequest) -> None:
        asked = replace(request, extra_args=list(request.extra_args))  # as typed: the engine may normalise its copy
        try:
            job = self.engine.start(request)
        except BadInput as exc:
            self.post_message(StartDone(asked, error=str(exc), bad_input=True))
        except ENGINE_ERRORS as exc:
            self.post_message(StartDone(asked, error=str(exc)))
        else:
            self.post_message(StartDone(asked, job=job))

    def on_start_done(self, message: StartDone) -> None:
        self._starting -= 1
        self._update_status()
        if message.job is not None:
            self.tell(f"started job {message.job.id} (PID {message.job.pid})")
            self.refresh_jobs()
        elif message.bad_input and self.screen is self.screen_stack[0]:
            self._ask_start(message.request, message.error or "")  # back to the dialog, as typed
        else:
            self.tell(f"job not started: {message.error}", severity="error")
            self.refresh_jobs()  # a failed start may have left a record (failed to start)

    # ---- killing a job: verified in a worker, confirmed in the dialog, carried out in a worker ---

    def action_kill_job(self) -> None:
        v = self._selected_view()
        if v is None:
            self.tell("no job selected", severity="warning")
            return
        self._verify_kill(v.job.id)

    @work(thread=True, group="kill")
    def _verify_kill(self, job_id: str) -> None:
        try:
            job = self.engine.find(job_id)
            flow = KillFlow(self.engine, job)
            report = flow.verify()
        except ENGINE_ERRORS as exc:
            self.post_message(KillDone(job_id, str(exc), severity="error"))
            return
        if flow.finished is not None:  # a kill left by a codexdash that died: finished now
            self.post_message(KillDone(job_id, flow.finished.summary(job.status), status=job.status))
        elif not report.ok and not job.is_live:
            flow.close()
            self.post_message(KillDone(job_id, str(flow.refusal()), severity="warning", status=job.status))
        else:
            self.post_message(KillVerified(flow))

    def on_kill_verified(self, message: KillVerified) -> None:
        flow = message.flow

        def answered(confirmed: bool | None) -> None:
            if not flow.report.ok:  # refused, and recorded so, when verified: nothing more to do
                flow.close()
                self.tell(f"kill of job {flow.job.id} refused: {flow.report.reason()}", severity="error")
                return
            if confirmed:
                self._killing.add(flow.job.id)
            self._answer_kill(flow, bool(confirmed))

        self.push_screen(KillDialog(flow.job, flow.report, flow.plan), answered)

    @work(thread=True, group="kill")
    def _answer_kill(self, flow: KillFlow, confirmed: bool) -> None:
        job = flow.job
        try:
            if not confirmed:
                flow.cancel()
                done = KillDone(job.id, status=job.status)
            else:
                result = flow.carry_out()
                done = KillDone(job.id, result.summary(job.status), status=job.status)
        except ENGINE_ERRORS as exc:
            done = KillDone(job.id, str(exc), severity="error")
        finally:
            flow.close()
        self.post_message(done)

    def on_kill_done(self, message: KillDone) -> None:
        if message.status is not None:
            self._known_status[message.job_id] = message.status  # its end is told here, once
        self._killing.discard(message.job_id)
        if message.text:
            self.tell(message.text, severity=message.severity)
        self.refresh_jobs()

    # ---- command palette: every action ---------------------------------------------------------

    def get_system_commands(self, screen):
        yield from super().get_system_commands(screen)
        for title, help_text, action in [
            ("Start a job", "open the start dialog (n)", self.action_start_job),
            ("Kill the selected job", "verify, confirm, stop (k)", self.action_kill_job),
            ("Toggle follow", "follow the session as it grows (f)", self.action_toggle_follow),
            ("Toggle raw JSON", "show the session file's lines as written (r)", self.action_toggle_raw),
            ("Filter jobs / search session", "(/)", self.action_find),
            ("Toggle all history", "every job ever, or running and recent (a)", self.action_toggle_history),
            ("Cycle sort", "newest, state, cpu, memory, tokens, idle (s)", self.action_cycle_sort),
            ("Switch focus", "between the table and the session pane (tab)", self.action_toggle_focus),
            ("Keys", "show every key (?)", self.action_help),
        ]:
            yield SystemCommand(title, help_text, action)


def run_dashboard(engine: JobEngine, title: str | None = None) -> int:
    app = CodexdashApp(engine, title=title)
    app.run()
    running = sum(1 for v in app.views if v.job.is_live)  # as last shown: no store read on the way out
    if running:
        print(f"codexdash: {running} job(s) keep running; `codexdash` or `codexdash list` shows them again.")
    return app.return_code or 0
