"""The dashboard: wires the jobs table, the session pane and the dialogs to the job engine.

Every engine call (polling processes, the store, starting, verifying, killing) runs in a worker
thread; results come back as messages, so the screen never waits on I/O or on a locked store.
Dialogs only ask: the app acts on their answers (job_actions.py). Every text shown comes from
`tell` or a `Text`: never read as markup, control characters made visible.
"""

from __future__ import annotations

import os
import socket
import time
from functools import partial
from pathlib import Path

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical
from textual.notifications import SeverityLevel
from textual.widgets import Footer, Input, Static

from codexdash import format as fmt
from codexdash.boxes import LOCAL, Box, LocalBox
from codexdash.jobs import JobEngine, JobView
from codexdash.render import sanitize
from codexdash.store import JobStatus
from codexdash.ui import keys, saved_state
from codexdash.ui.attention import STALLED, Attention
from codexdash.ui.box_polls import BoxPolls
from codexdash.ui.column_chooser import ColumnChooser
from codexdash.ui.columns import BY_KEY, COLUMNS, STALL_SECONDS, ExternalView
from codexdash.ui.help_screen import HelpScreen
from codexdash.ui.job_actions import ENGINE_ERRORS, JobActions
from codexdash.ui.key_hold import KeyHold
from codexdash.ui.jobs_table import JobsTable
from codexdash.ui.messages import JobsRefreshed
from codexdash.ui.remote_kill import RemoteKill
from codexdash.ui.session_pane import SessionLog, SessionPane
from codexdash.ui.sort_menu import SortMenu
from codexdash.ui.status_line import Facts, status_text
from codexdash.ui.terminal_alert import TerminalAlert
from codexdash.ui import textual_fixes

NARROW_WIDTH = 110  # below this the session pane goes under the table
FOOTER_PALETTE_WIDTH = 100  # below this the footer leaves out the palette key (ctrl+p still works)
EXTERNAL_EVERY = 5  # external sessions are looked for every this many refreshes
TEXTUAL_COMMANDS_REPLACED = {"Keys", "Quit", "Maximize", "Minimize"}  # the palette lists ours instead


def configured_boxes(engine: JobEngine) -> list[Box]:
    """This box, then every configured one (hosts / CODEXDASH_HOSTS), in the order configured."""
    from codexdash.remote import SshBox

    return [LocalBox(engine), *(SshBox(name, engine.settings) for name in getattr(engine.settings, "hosts", ()))]


class CodexdashApp(BoxPolls, RemoteKill, JobActions, KeyHold, App):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses may live anywhere
    TITLE = "codexdash"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = keys.bindings("app")

    def __init__(self, engine: JobEngine, title: str | None = None, cwd: str | None = None, host: str | None = None,
                 state_path: Path | None = None, boxes: list[Box] | None = None) -> None:
        super().__init__()
        textual_fixes.apply()
        self.engine = engine
        # Every box the dashboard shows, this one first: the UI reaches each through `Box`.
        self.boxes: dict[str, Box] = {b.name: b for b in (boxes if boxes is not None else configured_boxes(engine))}
        self.local_box: Box = self.boxes.get(LOCAL) or LocalBox(engine)
        self.box_filter: str | None = None  # the one box shown (None: every box)
        self.start_cwd = cwd or os.getcwd()
        self.host = host or socket.gethostname()
        if title:
            self.title = title
        self.views: list[JobView] = []
        self.externals: list[ExternalView] = []
        self.all_history = False
        self.query_text = ""
        self.state_path = state_path or saved_state.default_path()
        self.saved = saved_state.load(self.state_path)
        self.hide_external = self.saved.hide_external
        if len(self.boxes) > 1:
            self.saved.offer_host_column()
        # The stall threshold: the setting where there is one (the notify hook uses it too).
        self.attention = Attention(self.saved.unseen, self.saved.closed_at,
                                   getattr(engine.settings, "stall_after", STALL_SECONDS))
        self.alert = TerminalAlert(self._write_to_terminal, engine.settings.notify_terminal, os.environ)
        self._refreshing = False  # a poll is under way
        self._refresh_again = False  # asked for while one was: it runs once more
        self.refreshes = 0  # refresh cycles shown so far
        self._polls = 0
        self._externals_due = True  # look for external sessions at the next poll
        self._status_facts: tuple[Facts, int] | None = None  # what the status line shows, at which width
        self._starting = 0  # starts under way in workers
        self._killing: set[str] = set()  # jobs this dashboard is killing: their end is told once, by the kill
        self._user_acted = False  # a key or click since start: selection from then on is looking
        self._highlighted: str | None = None

    def compose(self) -> ComposeResult:
        # Held, not queried: while a dialog is open, queries look at the dialog's screen.
        self.status_line = Static("", id="status")
        self.table = JobsTable(id="jobs")
        self.table.columns_chosen, self.table.widths = self.saved.columns, self.saved.widths
        self.table.sort_spec, self.table.pointer = self.saved.sort, self.saved.sort[0]
        self.table.unseen, self.table.stall_after = self.attention.unseen, self.attention.stall_after
        self.table.mono = self.no_color
        self.table.threads = self.saved.threads
        self.filter_box = Input(placeholder="filter jobs (enter: keep, escape: clear)", id="filter", classes="hidden")
        self.pane = SessionPane(id="session-pane")
        self.pane.boxes = self.boxes
        self.footer = Footer()
        yield self.status_line
        with Horizontal(id="main"):
            with Vertical(id="table-box"):
                yield self.table
                yield self.filter_box
            yield self.pane
        yield self.footer

    def on_mount(self) -> None:
        self.table.focus()
        self._apply_layout(self.size.width)
        self.refresh_jobs()
        self.set_interval(self.engine.settings.refresh_interval, self.refresh_jobs)
        self.start_box_polls(list(self.boxes.values()))

    def on_resize(self, event) -> None:
        self._apply_layout(event.size.width)
        self.call_after_refresh(self._update_status)  # after the table has fitted its columns

    def _apply_layout(self, width: int) -> None:
        self.screen_stack[0].set_class(width < NARROW_WIDTH, "narrow")
        self.footer.show_command_palette = width >= FOOTER_PALETTE_WIDTH

    # ---- the operator's presence ---------------------------------------------------------------

    def operator_acted(self) -> None:
        self._user_acted = True
        self._mark_seen(self.table.selected_job_id)

    # ---- the live table ---------------------------------------------------------------------

    def refresh_jobs(self) -> None:
        if self._refreshing:  # polls are never stacked: this one runs again when done
            self._refresh_again = True
            return
        self._refreshing = True
        externals = (self._externals_due or self._polls % EXTERNAL_EVERY == 0) and not self.hide_external
        self._externals_due = False
        self._polls += 1
        self._poll(externals)

    @work(thread=True, group="refresh")
    def _poll(self, externals: bool) -> None:
        try:
            while True:
                self._refresh_again = False
                try:
                    views = self.local_box.views(all_history=self.all_history, external=externals)
                    found = [v for v in views if isinstance(v, ExternalView)] if externals else None
                    views = [v for v in views if not isinstance(v, ExternalView)]
                    self.post_message(JobsRefreshed(views, externals=found))
                except ENGINE_ERRORS as exc:
                    # Shown, and tried again at the next refresh: the dashboard stays up.
                    self.post_message(JobsRefreshed(self.views, error=str(exc)))
                if not self._refresh_again:
                    break
        finally:
            self._refreshing = False

    def on_jobs_refreshed(self, message: JobsRefreshed) -> None:
        if not self.table.is_attached:
            return  # a poll that ends while the dashboard closes: nothing left to draw on
        if message.error:
            self.tell(message.error, severity="error")
        self.views = message.views
        if message.externals is not None:
            self.externals = message.externals
        for what, v in self.attention.update(message.views, self._killing):
            self._announce(what, v)
        self._show_table()
        self.refreshes += 1

    def _announce(self, what: str, v: JobView) -> None:
        """A toast in the dashboard; the bell and a desktop notification through the terminal."""
        j = v.job
        name = j.name or fmt.title(j.prompt)
        where = "" if v.host == LOCAL else f" on {v.host}"
        if what == STALLED:
            self.tell(f"job {j.id}{where} stalled: silent for {fmt.duration(self.attention.stall_after)}: {fmt.one_line(name, 40)}",
                      severity="warning")
            self.alert("codexdash", f"{fmt.one_line(name, 60)} stalled (job {j.id})")
            return
        severity = "information" if j.status in (JobStatus.COMPLETED, JobStatus.KILLED) else "error"
        self.tell(f"job {j.id}{where} {j.status.replace('_', ' ')}: {fmt.one_line(name, 40)}", severity=severity)
        self.alert("codexdash", f"{fmt.one_line(name, 60)} {j.status.replace('_', ' ')} (job {j.id}{where})")

    def _write_to_terminal(self, text: str) -> None:
        if not self.is_headless and self._driver is not None:
            self._driver.write(text)

    def tell(self, message: str, severity: SeverityLevel = "information") -> None:
        """A toast showing `message` as written: never markup, control characters made visible."""
        self.notify(sanitize(message), severity=severity, markup=False)

    def shown_views(self) -> list[JobView]:
        views = self.views + ([] if self.hide_external else self.externals) + self.remote_views()
        if self.hide_external:
            views = [v for v in views if not isinstance(v, ExternalView)]
        if self.box_filter is not None:
            views = [v for v in views if v.host == self.box_filter]
        return views

    def _show_table(self) -> None:
        self.table.show(self.shown_views(), query=self.query_text)
        self._update_status()
        self._show_selected()

    def _facts(self) -> Facts:
        shown = self.shown_views()
        tokens: dict[str, int] = {}
        for v in shown:
            if v.total_tokens:
                tokens[v.job.status] = tokens.get(v.job.status, 0) + v.total_tokens
        return Facts(
            host=self.host, title=self.title, codex_home=str(self.engine.settings.codex_home),
            statuses=[v.job.status for v in shown], tokens=tokens,
            attention=self.attention.counts(self.views + self.remote_views()),
            starting=self._starting, all_history=self.all_history, hide_external=self.hide_external,
            threads=self.table.threads,
            query=self.query_text, mono=self.no_color, sort=self._hidden_sort(),
            boxes=tuple(self.box_facts()) if len(self.boxes) > 1 else (), box_filter=self.box_filter,
        )

    def _hidden_sort(self) -> str:
        key, descending = self.table.sort_spec
        if key in self.table.shown_keys:
            return ""  # the header shows it
        return f"{BY_KEY[key].label} {'▼' if descending else '▲'}"

    def _update_status(self) -> None:
        facts = self._facts()
        width = self.size.width
        if (facts, width) != self._status_facts:  # redrawn only when it changes
            self._status_facts = (facts, width)
            self.status_line.update(status_text(facts, width))

    def _selected_view(self) -> JobView | None:
        jid = self.table.selected_job_id
        return next((v for v in self.shown_views() if v.job.id == jid), None)

    def _show_selected(self) -> None:
        self.pane.show(self._selected_view(), self.views)

    def on_jobs_table_row_highlighted(self, _event: JobsTable.RowHighlighted) -> None:
        jid = self.table.selected_job_id
        if jid != self._highlighted:
            self._highlighted = jid
            if self._user_acted:
                self._mark_seen(jid)
        self._show_selected()

    def _mark_seen(self, job_id: str | None) -> None:
        if self.attention.seen(job_id):
            self._show_table()

    def on_jobs_table_header_selected(self, event: JobsTable.HeaderSelected) -> None:
        self._sort_by(event.column_key)

    # ---- actions ------------------------------------------------------------------------

    def action_focus_pane(self) -> None:
        self.pane.log_view.focus()

    def action_focus_next(self) -> None:
        """Tab (the screen's own binding): on the main screen, between the table and the pane."""
        if self.screen is self.screen_stack[0]:
            self.action_toggle_focus()
        else:
            super().action_focus_next()

    def action_focus_previous(self) -> None:
        if self.screen is self.screen_stack[0]:
            self.action_toggle_focus()
        else:
            super().action_focus_previous()

    def action_toggle_focus(self) -> None:
        if self.screen_stack[0].has_class("zoomed"):
            self.action_zoom()  # back to both: the table is where the focus goes
        elif self.focused is self.table:
            self.pane.log_view.focus()
        else:
            self.table.focus()

    def action_zoom(self) -> None:
        main = self.screen_stack[0]
        zoomed = not main.has_class("zoomed")
        main.set_class(zoomed, "zoomed")
        (self.pane.log_view if zoomed else self.table).focus()

    def action_toggle_follow(self) -> None:
        self.pane.follow = not self.pane.follow

    def action_toggle_raw(self) -> None:
        self.pane.raw = not self.pane.raw

    def action_toggle_history(self) -> None:
        self.all_history = not self.all_history
        self.tell("showing every job ever recorded" if self.all_history else "showing running and recent jobs")
        self._externals_due = True
        self.refresh_jobs()
        self.rewatch_boxes()

    def action_filter_box(self) -> None:
        """Every box → this box → each other box in turn → every box again."""
        names = [None, *self.boxes]
        self.box_filter = names[(names.index(self.box_filter) + 1) % len(names)] if self.box_filter in names else None
        self.tell("showing the jobs of every box" if self.box_filter is None else f"showing only the jobs of {self.box_filter}")
        self._show_table()

    def action_toggle_external(self) -> None:
        self.hide_external = not self.hide_external
        self.tell("external Codex sessions hidden" if self.hide_external else "showing external Codex sessions too")
        self._save_state()
        self._show_table()
        if not self.hide_external:
            self._externals_due = True
            self.refresh_jobs()
        self.rewatch_boxes()

    def action_toggle_threads(self) -> None:
        self.table.threads = not self.table.threads
        self.tell("follow-ups shown under the job they continue" if self.table.threads
                  else "every job in the sort's order")
        self._save_state()
        self._show_table()

    def action_sort_here(self) -> None:
        self._sort_by(self.table.pointer)

    def _sort_by(self, key: str) -> None:
        self.table.sort_by(key)
        self._save_state()
        self._update_status()

    def action_sort_menu(self) -> None:
        def chosen(key: str | None) -> None:
            if key:
                self._sort_by(key)

        self.push_screen(SortMenu(self.table.sort_spec), chosen)

    def action_choose_columns(self) -> None:
        def chosen(answer: tuple[list[str], dict[str, int]] | None) -> None:
            if answer is not None:
                self.table.set_columns(*answer)
                self._save_state()
                self._update_status()

        self.push_screen(ColumnChooser(self.table.columns_chosen, self.table.widths), chosen)

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
            if self.screen_stack[0].has_class("zoomed"):
                self.action_zoom()
            else:
                self.table.focus()
            event.stop()

    # ---- remembered between runs ---------------------------------------------------------------

    def current_state(self, closing: bool = False) -> saved_state.SavedState:
        known = {v.job.id for v in self.views + self.remote_views()}
        return saved_state.SavedState(
            columns=list(self.table.columns_chosen), widths=dict(self.table.widths), sort=self.table.sort_spec,
            hide_external=self.hide_external, threads=self.table.threads, host_offered=self.saved.host_offered,
            unseen=sorted(self.attention.unseen & known if self.refreshes else self.attention.unseen),
            closed_at=time.time() if closing else self.saved.closed_at,
        )

    @work(thread=True, exclusive=True, group="state")
    def _save_state(self) -> None:
        try:
            saved_state.save(self.state_path, self.current_state())
        except OSError as exc:
            self.call_from_thread(self.tell, f"cannot save the dashboard's layout in {self.state_path}: {exc.strerror}",
                                  "warning")

    def save_on_exit(self) -> None:
        try:
            saved_state.save(self.state_path, self.current_state(closing=True))
        except OSError:
            pass  # on the way out: the layout is not worth an error

    def on_unmount(self) -> None:
        self.stop_box_polls()
        self.save_on_exit()

    # ---- command palette: every action, from the table of keys -----------------------------------

    def get_system_commands(self, screen):
        for command in super().get_system_commands(screen):
            if command.title not in TEXTUAL_COMMANDS_REPLACED:
                yield command
        for key in keys.palette_entries():
            yield SystemCommand(key.palette, f"{key.help} ({keys.shown(key.keys)})", partial(self.run_action, key.action))
        for col in COLUMNS:
            yield SystemCommand(f"Sort by {col.label}", "sort the table by this column; again: reverse",
                                partial(self._sort_by, col.key))


def run_dashboard(engine: JobEngine, title: str | None = None) -> int:
    app = CodexdashApp(engine, title=title)
    app.run()
    running = sum(1 for v in app.views if v.job.is_live)  # as last shown: no store read on the way out
    if running:
        print(f"codexdash: {running} job(s) keep running; `codexdash` or `codexdash list` shows them again.")
    return app.return_code or 0
