"""Settings: defaults, then the config file, then the environment, then command-line flags.

The reading and the checks are in config_values.py (the names, and what makes a value bad),
which gives the values only: this module makes them a Settings, a dataclass, and importing
dataclasses costs a command like `logs FILE`, which checks its settings but never uses them, a
good part of its time.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from codexdash.config_values import (  # noqa: F401 - the names codexdash and its users know from here
    APP_NAME,
    FILE_KEYS,
    MARKER_ENV,
    RANGES,
    STALL_SECONDS,
    default_config_path,
    default_db_path,
    host_names,
    read_settings,
    seconds,
    split_command,
)


@dataclass(frozen=True)
class Settings:
    codex_home: Path = field(default_factory=lambda: Path.home() / ".codex")
    db_path: Path = field(default_factory=default_db_path)
    codex_command: tuple[str, ...] = ("codex",)
    refresh_interval: float = 1.0
    # Grace periods of the kill escalation: SIGINT, then SIGTERM after the first, then
    # SIGKILL after the second.
    interrupt_grace: float = 3.0
    terminate_grace: float = 3.0
    # The hook run once when a job finishes or stalls (None: none), and how long it may run
    # before it is killed.
    notify_command: tuple[str, ...] | None = None
    notify_timeout: float = 10.0
    stall_after: float = STALL_SECONDS
    # Each start makes sure a watcher follows the live jobs until they end (watcher.py).
    watch: bool = True
    # Other boxes, as the operator's ssh knows them; the ssh command (split like a shell); and
    # the command run there (shell text for the box's login shell).
    hosts: tuple[str, ...] = ()
    ssh_command: tuple[str, ...] = ("ssh",)
    remote_command: str = "codexdash"
    # The dashboard rings the bell and sends a desktop notification (OSC 9 / OSC 777) through
    # the terminal when a job finishes or stalls; never under TERM=dumb.
    notify_terminal: bool = True

    def with_overrides(self, **overrides: object) -> Settings:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def load_settings(*args, **kwargs) -> Settings:
    """Settings from the config file, the environment, then the flags given, as
    `config_values.read_settings` reads and checks them (the same arguments).

    Raises BadInput naming the first bad setting; an unknown key in the file is a warning."""
    return Settings(**read_settings(*args, **kwargs))
