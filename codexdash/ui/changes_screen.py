"""The Changes view: what the selected job changed in its working tree (`codexdash diff`),
read on the box that ran it (`box.diff`: on another box, its `codexdash diff --json`).

The changes are computed in a worker (Git runs, the session file is read); the screen shows
"reading…" until they come, then the list of files with their diffs, or the list alone (`s`).
Everything shown is inert text: file names and contents come from the job.
"""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import RichLog, Static

from codexdash.errors import CodexdashError
from codexdash.render import Line, sanitize
from codexdash.store import Job
from codexdash.ui.styles import LINE_STYLES


class ChangesScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q,c", "close", "Close"),
        Binding("s", "toggle_stat", "Files only / diffs"),
    ]

    def __init__(self, box, job: Job) -> None:
        super().__init__()
        self.box = box
        self.job = job
        self.changes = None
        self.stat = False

    def compose(self) -> ComposeResult:
        with Vertical(id="changes", classes="dialog"):
            name = self.job.name or self.job.id
            where = "" if self.box.name == "local" else f" on {self.box.name}"
            yield Static(Text(sanitize(f"Changes of job {self.job.id}{where} · {name}")), classes="dialog-title")
            yield RichLog(id="changes-log", wrap=True, markup=False, highlight=False, auto_scroll=False)
            yield Static(Text("s files only / diffs   esc close"), classes="dialog-help")

    def on_mount(self) -> None:
        self.query_one(RichLog).write(Text("reading the job's changes…", style="dim"))
        self.read_changes()
        let_go = getattr(self.app, "let_keys_go", None)
        if let_go is not None:  # keys typed right after the one that opened this view land here
            let_go()

    @work(thread=True, exclusive=True, group="changes")
    def read_changes(self) -> None:
        try:
            changes = self.box_changes()
        except (CodexdashError, OSError, AttributeError, TypeError) as exc:  # the last two: an answer of another shape
            self.app.call_from_thread(self.show, [Line("error", str(exc))])
            return
        self.changes = changes
        self.app.call_from_thread(self.show, changes.lines(stat=self.stat))

    def box_changes(self):
        from codexdash.changes import Changes

        return Changes.from_json(self.box.diff(self.job.id))

    def show(self, lines: list[Line]) -> None:
        log = self.query_one(RichLog)
        log.clear()
        for line in lines:
            log.write(Text(line.text, style=LINE_STYLES.get(line.style, "")))

    def action_toggle_stat(self) -> None:
        self.stat = not self.stat
        if self.changes is not None:
            self.show(self.changes.lines(stat=self.stat))

    def action_close(self) -> None:
        self.dismiss(None)
