"""The help screen: every key of the dashboard."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = [
    ("n", "start a job (ctrl+s starts, escape cancels)"),
    ("k / delete", "kill the selected job (shows the identity checks first)"),
    ("enter / tab", "move between the table and the session pane"),
    ("f", "follow the session on / off"),
    ("r", "raw JSON lines on / off"),
    ("/", "filter the table, or search the session when the pane has focus"),
    ("a", "finished jobs: the last day's, or all history"),
    ("s", "cycle the sort: newest, state, cpu, memory, tokens, idle"),
    ("ctrl+p", "command palette: every action"),
    ("?", "this help"),
    ("q", "quit (jobs keep running)"),
]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def compose(self) -> ComposeResult:
        width = max(len(k) for k, _ in KEYS)
        text = "\n".join(f"{k.rjust(width)}   {what}" for k, what in KEYS)
        with Vertical(id="help-dialog", classes="dialog"):
            yield Static("codexdash keys", classes="dialog-title")
            yield Static(text, markup=False)
            yield Static("States: ◌ starting  ● running  ◐ stopping  ✔ completed  ✖ failed  ■ interrupted  ✝ killed  ? lost  ! failed to start\n"
                         "Idle: time since the session file last grew; ⚠ when a live job has been silent for 2 minutes.",
                         markup=False, classes="dim")
            yield Static("escape closes", classes="dim")

    def action_close(self) -> None:
        self.dismiss(None)
