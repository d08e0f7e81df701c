"""Every key of the dashboard in one table. The bindings (app and table), the footer, the help
screen and the command palette are all made from it, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class Key:
    keys: str  # Textual key names, comma-separated ("k,delete")
    action: str  # the action run ("" for keys a widget handles itself: listed in help only)
    word: str  # the footer's word
    help: str  # the help screen's line
    group: str  # the help screen's section
    scope: str = "app"  # "app": bound on the app; "table": on the jobs table
    footer: bool = False
    palette: str = ""  # the command palette's title ("": not in the palette)
    opens: bool = False  # opens a dialog: keys typed right after it wait for the dialog


KEYS: list[Key] = [
    Key("n", "start_job", "New", "start a job (Tab: next field, Ctrl+S: start, Esc: cancel)",
        "Jobs", footer=True, palette="Start a job", opens=True),
    Key("c", "follow_up", "Follow-up", "follow-up: continue the selected job's Codex session",
        "Jobs", footer=True, palette="Follow up on the selected job", opens=True),
    Key("R", "retry_job", "Retry", "retry: run the selected job again, as it was started",
        "Jobs", palette="Retry the selected job"),
    Key("d", "show_changes", "Changes", "the selected job's changes: its files' diffs (codexdash diff)",
        "Jobs", palette="Show the selected job's changes", opens=True),
    Key("k,delete", "kill_job", "Kill", "kill the selected job (its identity checked first)",
        "Jobs", footer=True, palette="Kill the selected job"),
    Key("up", "cursor_up", "Up", "previous / next job", "Table", scope="table"),
    Key("down", "cursor_down", "Down", "previous / next job", "Table", scope="table"),
    Key("home,g", "scroll_top", "First", "first job", "Table", scope="table"),
    Key("end,G", "scroll_bottom", "Last", "last job", "Table", scope="table"),
    Key("pageup", "page_up", "Page up", "a page up / down", "Table", scope="table"),
    Key("pagedown", "page_down", "Page down", "a page up / down", "Table", scope="table"),
    Key("left", "column_left", "Column", "move the header cursor (the column s sorts by)", "Table", scope="table"),
    Key("right", "column_right", "Column", "move the header cursor (the column s sorts by)", "Table", scope="table"),
    Key("s", "sort_here", "Sort", "sort by the column under the header cursor; again: reverse",
        "Table", footer=True),
    Key("S", "sort_menu", "Sort by", "sort by a column chosen from a list", "Table", palette="Sort by a chosen column", opens=True),
    Key("C", "choose_columns", "Columns", "choose the columns, their order and widths (kept)",
        "Table", palette="Choose columns", opens=True),
    Key("slash", "find", "Filter", "filter the table (in the pane: search the session)",
        "Table", footer=True, palette="Filter jobs / search the session"),
    Key("a", "toggle_history", "All", "finished jobs: the last day's, or all history",
        "Table", palette="Toggle all history"),
    Key("b", "filter_box", "Box", "the jobs of every box, this box, or each other box in turn",
        "Table", palette="Show the jobs of one box (every box, this one, each other in turn)"),
    Key("x", "toggle_external", "External", "show / hide Codex sessions codexdash did not start",
        "Table", palette="Show or hide external sessions"),
    Key("t", "toggle_threads", "Threads", "threads: a job's follow-ups right under it, on / off",
        "Table", palette="Toggle threads together"),
    Key("enter", "app.focus_pane", "Session", "to the session pane", "Session pane", scope="table"),
    Key("tab", "toggle_focus", "Focus", "between the table and the session pane",
        "Session pane", palette="Switch focus between table and pane"),
    Key("z", "zoom", "Zoom", "zoom the session pane to the whole screen, and back",
        "Session pane", footer=True, palette="Zoom the session pane"),
    Key("f", "toggle_follow", "Follow", "follow the session on / off", "Session pane", palette="Toggle follow"),
    Key("r", "toggle_raw", "Raw", "raw JSON lines on / off", "Session pane", palette="Toggle raw JSON"),
    Key("escape", "", "Back", "close a dialog, clear the filter, back to the table", "App"),
    Key("ctrl+p", "", "Palette", "command palette: every action by name", "App"),
    Key("question_mark", "help", "Help", "this help", "App", footer=True, palette="Keys", opens=True),
    Key("q", "quit", "Quit", "quit (jobs keep running)", "App", footer=True, palette="Quit"),
]

_SHOWN = {
    "question_mark": "?", "slash": "/", "delete": "Del", "pageup": "PgUp", "pagedown": "PgDn", "home": "Home",
    "end": "End", "up": "↑", "down": "↓", "left": "←", "right": "→", "enter": "Enter", "tab": "Tab",
    "escape": "Esc", "ctrl+p": "Ctrl+P",
}


def shown(keys: str) -> str:
    """The keys as the help screen writes them ("k / Del")."""
    return " / ".join(_SHOWN.get(k, k) for k in keys.split(","))


def bindings(scope: str) -> list[Binding]:
    return [Binding(k.keys, k.action, k.word, show=k.footer) for k in KEYS if k.scope == scope and k.action]


DIALOG_ACTIONS = {k.action for k in KEYS if k.opens}


def palette_entries() -> list[Key]:
    return [k for k in KEYS if k.palette]
