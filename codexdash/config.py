"""Settings: defaults, then the config file, then the environment, then command-line flags.

The names are fixed (users script against them): CODEX_HOME, CODEXDASH_DB, CODEXDASH_CODEX,
CODEXDASH_NOTIFY_COMMAND.
"""

from __future__ import annotations

import os
import shlex
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

import platformdirs

from codexdash.errors import BadInput

APP_NAME = "codexdash"
MARKER_ENV = "CODEXDASH_JOB"
# A live job whose session file has not grown for this long is stalled (the default of
# `stall_after`: the dashboard's ⚠ and the `stalled` notification use the same threshold).
STALL_SECONDS = 120.0


def default_db_path() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME)) / "jobs.db"


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


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

    def with_overrides(self, **overrides: object) -> Settings:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def split_command(value: str, source: str, what: str = "the Codex command") -> tuple[str, ...]:
    try:
        parts = tuple(shlex.split(value))
    except ValueError as exc:
        raise BadInput(f"{source}: cannot split {what} {value!r}: {exc}") from None
    if not parts:
        raise BadInput(f"{source}: {what} is empty")
    return parts


def _positive_float(value: object, source: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BadInput(f"{source}: expected a number, got {value!r}") from None
    if number <= 0:
        raise BadInput(f"{source}: expected a positive number, got {value!r}")
    return number


def _from_file(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise BadInput(f"config file {path}: {exc}") from None
    values: dict[str, object] = {}
    src = f"config file {path}"
    if "codex_home" in data:
        values["codex_home"] = Path(str(data["codex_home"])).expanduser()
    if "db" in data:
        values["db_path"] = Path(str(data["db"])).expanduser()
    if "codex" in data:
        codex = data["codex"]
        values["codex_command"] = (
            tuple(str(p) for p in codex) if isinstance(codex, list) else split_command(str(codex), src)
        )
    if "notify_command" in data:
        hook = data["notify_command"]
        values["notify_command"] = (
            tuple(str(p) for p in hook) if isinstance(hook, list)
            else split_command(str(hook), f"{src}: notify_command", "the notify command")
        )
    for key in ("refresh_interval", "interrupt_grace", "terminate_grace", "notify_timeout", "stall_after"):
        if key in data:
            values[key] = _positive_float(data[key], f"{src}: {key}")
    if "watch" in data:
        if not isinstance(data["watch"], bool):
            raise BadInput(f"{src}: watch: expected true or false, got {data['watch']!r}")
        values["watch"] = data["watch"]
    return values


def load_settings(env: dict[str, str] | None = None, config_path: Path | None = None) -> Settings:
    """Settings from the config file and the environment; flags are applied by the caller."""
    env = dict(os.environ) if env is None else env
    if config_path is None:
        config_path = Path(env["CODEXDASH_CONFIG"]) if env.get("CODEXDASH_CONFIG") else default_config_path()
    values = _from_file(config_path)
    if env.get("CODEX_HOME"):
        values["codex_home"] = Path(env["CODEX_HOME"]).expanduser()
    if env.get("CODEXDASH_DB"):
        values["db_path"] = Path(env["CODEXDASH_DB"]).expanduser()
    if env.get("CODEXDASH_CODEX"):
        values["codex_command"] = split_command(env["CODEXDASH_CODEX"], "CODEXDASH_CODEX")
    if env.get("CODEXDASH_NOTIFY_COMMAND"):
        values["notify_command"] = split_command(
            env["CODEXDASH_NOTIFY_COMMAND"], "CODEXDASH_NOTIFY_COMMAND", "the notify command")
    return Settings().with_overrides(**values)
