"""The help screen: every key of the dashboard, from the one table of keys, and the marks."""

from __future__ import annotations

from itertools import groupby

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from codexdash import format as fmt
from codexdash.ui.columns import EXTERNAL_MARK, FOLLOW_UP_MARK, UNSEEN_MARK
from codexdash.ui.keys import KEYS, shown


def help_rows() -> list[tuple[str, str, str]]:
    """(group, keys, what) for each line of help: keys with the same words share a line."""
    rows: list[tuple[str, str, str]] = []
    for k in KEYS:
        if rows and rows[-1][0] == k.group and rows[-1][2] == k.help:
            group, keys, what = rows[-1]
            rows[-1] = (group, f"{keys} / {shown(k.keys)}", what)
        else:
            rows.append((k.group, shown(k.keys), k.help))
    return rows


def keys_table() -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(justify="right", style="bold", no_wrap=True)
    grid.add_column()
    for group, rows in groupby(help_rows(), key=lambda r: r[0]):
        grid.add_row("", Text(group, style="bold underline"))
        for _group, keys, what in rows:
            grid.add_row(keys, what)
    return grid


def marks_text() -> Text:
    states = "  ".join(fmt.status_label(s) for s in fmt.STATUS_SYMBOL)
    return Text(
        f"States: {states}  ⚠ stalled (live, silent for a while)\n"
        f"Marks: {UNSEEN_MARK} finished, not looked at yet   {FOLLOW_UP_MARK} follow-up   "
        f"{EXTERNAL_MARK} a Codex session codexdash did not start (read-only)\n"
        "Header: ▲ / ▼ the sorted column and its direction; the underlined column is the one s sorts by.\n"
        "Status line: ⚑ jobs that want you (failed, stalled, not looked at); Σ tokens, per state and in all.",
    )


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-dialog", classes="dialog"):
            yield Static("codexdash keys", classes="dialog-title")
            yield Static(keys_table(), id="help-keys")
            yield Static(marks_text(), classes="dim")
            yield Static("escape closes", classes="dim")

    def on_mount(self) -> None:
        self.app.let_keys_go()

    def action_close(self) -> None:
        self.dismiss(None)
