"""The start dialog: prompt, working directory, model, sandbox and extra Codex arguments."""

from __future__ import annotations

import shlex

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static, TextArea

from codexdash.errors import CodexdashError
from codexdash.jobs import JobEngine, StartRequest
from codexdash.render import sanitize
from codexdash.store import Job

SANDBOX_MODES = ["read-only", "workspace-write", "danger-full-access"]


class StartDialog(ModalScreen[Job | None]):
    """Starts a job on ctrl+s; errors stay in the dialog and nothing is recorded for them."""

    BINDINGS = [
        Binding("ctrl+s", "start", "Start", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, engine: JobEngine, cwd: str) -> None:
        super().__init__()
        self.engine = engine
        self.default_cwd = cwd

    def compose(self) -> ComposeResult:
        with Vertical(id="start-dialog", classes="dialog"):
            yield Static("Start a Codex job", classes="dialog-title")
            yield Label("Prompt")
            yield TextArea(id="prompt", soft_wrap=True, show_line_numbers=False, compact=True)
            yield Label("Working directory")
            yield Input(self.default_cwd, id="cwd", compact=True)
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label("Model (empty: Codex's default)")
                    yield Input(id="model", compact=True)
                with Vertical():
                    yield Label("Sandbox")
                    yield Select([(m, m) for m in SANDBOX_MODES], id="sandbox", prompt="Codex's default", compact=True)
            yield Label("Extra codex exec arguments (split like a shell)")
            yield Input(id="extra", compact=True)
            yield Static("", id="start-error", classes="dialog-error")
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
        extra_text = self.query_one("#extra", Input).value
        try:
            extra = shlex.split(extra_text)
        except ValueError as exc:
            raise CodexdashError(f"extra arguments: {exc}") from None
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
            job = self.engine.start(self.request())
        except CodexdashError as exc:
            self.show_error(str(exc))
            return
        self.dismiss(job)

    def action_cancel(self) -> None:
        self.dismiss(None)
