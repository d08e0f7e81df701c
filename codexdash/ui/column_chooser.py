"""The column chooser: which columns the table shows, in which order, how wide. Returns the
choice (the app applies and remembers it) or None."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from codexdash.ui.columns import BY_KEY, COLUMNS
from codexdash.ui.saved_state import MAX_WIDTH

Choice = tuple[list[str], dict[str, int]]


class ColumnChooser(ModalScreen[Choice | None]):
    BINDINGS = [
        Binding("space", "toggle", "Show/hide", priority=True),
        Binding("plus,equals_sign,right", "wider", "Wider"),
        Binding("minus,left", "narrower", "Narrower"),
        Binding("left_square_bracket", "move(-1)", "Move up"),
        Binding("right_square_bracket", "move(1)", "Move down"),
        Binding("0", "defaults", "Defaults"),
        Binding("enter", "apply", "Apply", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, shown: list[str], widths: dict[str, int]) -> None:
        super().__init__()
        self.order = list(shown) + [c.key for c in COLUMNS if c.key not in shown]
        self.shown = set(shown)
        self.widths = dict(widths)

    def compose(self) -> ComposeResult:
        with Vertical(id="column-chooser", classes="dialog small"):
            yield Static("Columns", classes="dialog-title")
            self.options = OptionList(*self._options(), id="column-options")
            yield self.options
            yield Static("space show/hide · +/- width · [ ] move · 0 defaults · enter apply · escape cancel",
                         classes="dim")

    def on_mount(self) -> None:
        self.options.highlighted = 0
        self.options.focus()
        self.app.let_keys_go()

    def _options(self) -> list[Option]:
        out = []
        for key in self.order:
            col = BY_KEY[key]
            width = "fills the rest" if col.flex else str(self.widths.get(key, col.width))
            mark = "[x]" if key in self.shown or key == "name" else "[ ]"
            note = "  (always shown)" if key == "name" else ""
            out.append(Option(Text(f"{mark} {col.label:<10} {width:>14}{note}"), id=key))
        return out

    def _redraw(self, highlight: int | None = None) -> None:
        at = self.options.highlighted if highlight is None else highlight
        self.options.clear_options()
        self.options.add_options(self._options())
        self.options.highlighted = at

    @property
    def _key(self) -> str | None:
        at = self.options.highlighted
        return self.order[at] if at is not None else None

    def action_toggle(self) -> None:
        key = self._key
        if key is None or key == "name":
            return
        self.shown ^= {key}
        self._redraw()

    def _resize(self, step: int) -> None:
        key = self._key
        if key is None or BY_KEY[key].flex:
            return
        col = BY_KEY[key]
        self.widths[key] = max(col.min_width, len(col.label) + 2, min(MAX_WIDTH, self.widths.get(key, col.width) + step))
        self._redraw()

    def action_wider(self) -> None:
        self._resize(2)

    def action_narrower(self) -> None:
        self._resize(-2)

    def action_move(self, step: int) -> None:
        at = self.options.highlighted
        if at is None or not 0 <= at + step < len(self.order):
            return
        self.order[at], self.order[at + step] = self.order[at + step], self.order[at]
        self._redraw(at + step)

    def action_defaults(self) -> None:
        self.order = [c.key for c in COLUMNS]
        self.shown = {c.key for c in COLUMNS if c.shown}
        self.widths = {}
        self._redraw()

    def action_apply(self) -> None:
        self.dismiss(([k for k in self.order if k in self.shown or k == "name"], self.widths))

    def action_cancel(self) -> None:
        self.dismiss(None)
