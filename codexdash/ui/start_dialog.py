"""The start dialog: prompt, working directory, model, sandbox and extra Codex arguments.

It only asks: ctrl+s returns the request, escape returns None, and the app starts the job in a
worker. A request the engine turns down comes back here, filled in as typed, with the reason.
"""

from __future__ import annotations

import shlex

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static, TextArea

from codexdash.jobs import StartRequest
from codexdash.render import sanitize

SANDBOX_MODES = ["read-only", "workspace-write", "danger-full-access"]


class StartDialog(ModalScreen[StartRequest | None]):
    BINDINGS = [
        Binding("ctrl+s", "start", "Start", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, cwd: str, request: StartRequest | None = None, error: str = "") -> None:
        super().__init__()
        self.default_cwd = cwd
        self.filled = request or StartRequest(prompt="", cwd=cwd)
        self.error = error

    def compose(self) -> ComposeResult:
        r = self.filled
        with Vertical(id="start-dialog", classes="dialog"):
            yield Static("Start a Codex job", classes="dialog-title")
            yield Label("Prompt")
            yield TextArea(r.prompt, id="prompt", soft_wrap=True, show_line_numbers=False, compact=True)
            yield Label("Working directory")
            yield Input(r.cwd, id="cwd", compact=True)
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label("Model (empty: Codex's default)")
                    yield Input(r.model or "", id="model", compact=True)
                with Vertical():
                    yield Label("Sandbox")
                    yield Select([(m, m) for m in SANDBOX_MODES], id="sandbox", prompt="Codex's default", compact=True,
                                 value=r.sandbox if r.sandbox in SANDBOX_MODES else Select.NULL)
            yield Label("Extra codex exec arguments (split like a shell)")
            yield Input(shlex.join(r.extra_args), id="extra", compact=True)
            yield Static(Text(sanitize(self.error)), id="start-error", classes="dialog-error")
            with Horizontal(classes="buttons"):
                yield Button("Start (ctrl+s)", id="do-start", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#prompt", TextArea).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "do-start":
            self.action_start()
        else:
            self.action_cancel()

    def show_error(self, text: str) -> None:
        self.query_one("#start-error", Static).update(Text(sanitize(text)))

    def request(self) -> StartRequest:
        """The request as typed; a ValueError when the extra arguments cannot be split."""
        extra_text = self.query_one("#extra", Input).value
        try:
            extra = shlex.split(extra_text)
        except ValueError as exc:
            raise ValueError(f"extra arguments: {exc}") from None
        sandbox = self.query_one("#sandbox", Select).value
        return StartRequest(
            prompt=self.query_one("#prompt", TextArea).text,
            cwd=self.query_one("#cwd", Input).value.strip() or self.default_cwd,
            model=self.query_one("#model", Input).value.strip() or None,
            sandbox=sandbox if isinstance(sandbox, str) else None,
            extra_args=extra,
        )

    def action_start(self) -> None:
        try:
            request = self.request()
        except ValueError as exc:
            self.show_error(str(exc))
            return
        self.dismiss(request)

    def action_cancel(self) -> None:
        self.dismiss(None)
