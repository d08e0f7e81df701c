"""The sort menu: every column, the sorted one marked; choosing it again reverses."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from codexdash.ui.columns import COLUMNS


class SortMenu(ModalScreen[str | None]):
    BINDINGS = [Binding("escape,q", "cancel", "Cancel")]

    def __init__(self, sort_spec: tuple[str, bool]) -> None:
        super().__init__()
        self.sort_spec = sort_spec

    def compose(self) -> ComposeResult:
        key, descending = self.sort_spec
        options = []
        for col in COLUMNS:
            mark = (" ▼ (again: ▲)" if descending else " ▲ (again: ▼)") if col.key == key else ""
            options.append(Option(Text(col.label + mark), id=col.key))
        with Vertical(id="sort-menu", classes="dialog small"):
            yield Static("Sort by", classes="dialog-title")
            self.options = OptionList(*options, id="sort-options")
            yield self.options
            yield Static("enter sorts · escape closes", classes="dim")

    def on_mount(self) -> None:
        self.options.highlighted = next(i for i, c in enumerate(COLUMNS) if c.key == self.sort_spec[0])
        self.options.focus()
        self.app.let_keys_go()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
