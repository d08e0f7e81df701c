"""The start dialog: the box (this one by default, or a configured one), prompt, name,
working directory, model, sandbox and extra Codex arguments; for a follow-up, the prompt, model
and sandbox (the rest is the parent job's, and it runs on the parent's box).

It only asks: ctrl+s returns the request, escape returns None, and the app starts the job in a
worker. A request the engine turns down comes back here, filled in as typed, with the reason.
Tab and shift+tab are priority keys: the field changes the moment the key is read, so the keys
typed after it in the same burst land in the next field (the prompt never eats a Tab).
"""

from __future__ import annotations

import shlex

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static, TextArea

from codexdash import format as fmt
from codexdash.boxes import LOCAL
from codexdash.starting import SANDBOX_MODES, StartRequest
from codexdash.render import sanitize
from codexdash.store import Job


class StartDialog(ModalScreen[StartRequest | None]):
    BINDINGS = [
        # Not a priority key: it queues behind the text typed before it, which is then all in.
        Binding("ctrl+s", "start", "Start"),
        Binding("tab", "app.focus_next", "Next field", show=False, priority=True),
        Binding("shift+tab", "app.focus_previous", "Previous field", show=False, priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, cwd: str, request: StartRequest | None = None, error: str = "", parent: Job | None = None,
                 hosts: list[str] | None = None) -> None:
        super().__init__()
        self.default_cwd = cwd
        self.parent_job = parent or (request.parent if request else None)
        self.filled = request or StartRequest(prompt="", cwd=cwd)
        self.error = error
        self.hosts = hosts or [LOCAL]

    @property
    def follow_up(self) -> bool:
        return self.parent_job is not None

    def compose(self) -> ComposeResult:
        r, parent = self.filled, self.parent_job
        with Vertical(id="start-dialog", classes="dialog"):
            if parent is None:
                yield Static("Start a Codex job", classes="dialog-title")
                if len(self.hosts) > 1:
                    yield Label("Box")
                    yield Select([(h if h != LOCAL else f"{LOCAL} (this box)", h) for h in self.hosts], id="host",
                                 compact=True, allow_blank=False, value=r.host if r.host in self.hosts else LOCAL)
            else:
                name = parent.name or fmt.title(parent.prompt)
                yield Static(Text(sanitize(f"Follow-up on job {parent.id} · {fmt.one_line(name, 50)}")), classes="dialog-title")
                where = "" if r.host == LOCAL else f" on {r.host}"
                yield Static(Text(sanitize(f"Continues its Codex session in {parent.cwd}{where}")), classes="dim")
            yield Label("Prompt")
            yield TextArea(r.prompt, id="prompt", soft_wrap=True, show_line_numbers=False, compact=True, tab_behavior="focus")
            if parent is None:
                with Horizontal(classes="row"):
                    with Vertical():
                        yield Label("Name (empty: a title from the prompt)")
                        yield Input(r.name or "", id="name", compact=True, placeholder=fmt.title(r.prompt))
                    with Vertical():
                        yield Label("Working directory")
                        yield Input(r.cwd, id="cwd", compact=True, placeholder="the box's home directory")
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label("Model (empty: Codex's default)" if parent is None else "Model (empty: the job's)")
                    yield Input(r.model or "", id="model", compact=True)
                with Vertical():
                    yield Label("Sandbox")
                    yield Select([(m, m) for m in SANDBOX_MODES], id="sandbox", compact=True,
                                 prompt="Codex's default" if parent is None else "the job's",
                                 value=r.sandbox if r.sandbox in SANDBOX_MODES else Select.NULL)
            if parent is None:
                yield Label("Extra codex exec arguments (split like a shell)")
                yield Input(shlex.join(r.extra_args), id="extra", compact=True)
            error = Static(Text(sanitize(self.error)), id="start-error", classes="dialog-error")
            error.display = bool(self.error)
            yield error
            with Horizontal(classes="buttons"):
                yield Button("Start (ctrl+s)", id="do-start", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.set_focus(self.query_one("#prompt", TextArea))
        self.app.let_keys_go()  # the keys typed while it opened, in order, to its fields

    def on_select_changed(self, event: Select.Changed) -> None:
        """Another box: the directory typed for this one means nothing there (empty: its home)."""
        if event.select.id != "host":
            return
        cwd = self.query_one("#cwd", Input)
        if event.value != LOCAL and cwd.value == self.default_cwd:
            cwd.value = ""
        elif event.value == LOCAL and not cwd.value:
            cwd.value = self.default_cwd

    @property
    def host(self) -> str:
        if self.parent_job is not None:
            return self.filled.host
        chosen = self.query_one("#host", Select).value if len(self.hosts) > 1 else LOCAL
        return chosen if isinstance(chosen, str) else LOCAL

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if not self.follow_up:
            self.query_one("#name", Input).placeholder = fmt.title(event.text_area.text)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "do-start":
            self.action_start()
        else:
            self.action_cancel()

    def show_error(self, text: str) -> None:
        error = self.query_one("#start-error", Static)
        error.update(Text(sanitize(text)))
        error.display = bool(text)

    def request(self) -> StartRequest:
        """The request as typed; a ValueError when the extra arguments cannot be split."""
        sandbox = self.query_one("#sandbox", Select).value
        model = self.query_one("#model", Input).value.strip() or None
        prompt = self.query_one("#prompt", TextArea).text
        sandbox = sandbox if isinstance(sandbox, str) else None
        if self.parent_job is not None:
            return StartRequest(prompt=prompt, cwd=self.parent_job.cwd, model=model, sandbox=sandbox, parent=self.parent_job,
                                host=self.host)
        try:
            extra = shlex.split(self.query_one("#extra", Input).value)
        except ValueError as exc:
            raise ValueError(f"extra arguments: {exc}") from None
        return StartRequest(
            prompt=prompt,
            cwd=self.query_one("#cwd", Input).value.strip() or (self.default_cwd if self.host == LOCAL else ""),
            model=model,
            sandbox=sandbox,
            extra_args=extra,
            name=self.query_one("#name", Input).value.strip() or None,
            host=self.host,
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
