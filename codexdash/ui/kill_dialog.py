"""The kill dialog: the identity checks with their results (on another box: as that box ran
them), and what will be sent.

Focus starts on Cancel. When a check fails the dialog says which and why, and offers no kill.
It only asks: the answer goes back to the app, which records it and acts in a worker.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from codexdash.identity import IdentityReport
from codexdash.kill import KillStep, describe_plan
from codexdash.render import sanitize
from codexdash.store import Job


class KillDialog(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "confirm", "Kill", show=False),
        Binding("n", "cancel", "Cancel", show=False),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, job: Job, report: IdentityReport, plan: list[KillStep] | str, host: str = "local") -> None:
        super().__init__()
        self.job = job
        self.report = report
        self.plan = plan if isinstance(plan, str) else describe_plan(plan)
        self.host = host

    def compose(self) -> ComposeResult:
        r = self.report
        with Vertical(id="kill-dialog", classes="dialog"):
            where = "" if self.host == "local" else f" on {self.host}"
            title = f"Kill job {self.job.id}{where}?" if r.ok else f"Job {self.job.id}{where} cannot be killed"
            yield Static(Text(sanitize(title)), classes="dialog-title")
            if self.host != "local":
                yield Static(Text(sanitize(f"The checks as {self.host} ran them; {self.host} checks again and kills."),
                                  style="dim"), id="kill-where")
            yield Static(Text(f"PID {r.pid if r.pid is not None else self.job.pid}   {sanitize(' '.join(r.cmdline))[:400] or '(no command line)'}"), id="kill-command")
            checks = Text()
            for c in r.checks:
                checks.append("✔ " if c.ok else "✖ ", style="green" if c.ok else "bold red")
                checks.append(f"{c.name}: ", style="bold")
                checks.append(sanitize(c.detail) + "\n")
            yield Static(checks, id="kill-checks")
            if r.ok:
                yield Static(Text("Will send: " + sanitize(self.plan)), id="kill-plan")
            else:
                yield Static(Text("Refused: " + sanitize(r.reason()) + ". Nothing will be sent."), id="kill-refused", classes="dialog-error")
            with Horizontal(classes="buttons"):
                if r.ok:
                    yield Button("Kill (y)", id="do-kill", variant="error", compact=True)
                yield Button("Cancel (n/esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "do-kill" and self.report.ok)

    def action_confirm(self) -> None:
        if self.report.ok:
            self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)
