"""Settings: defaults, then the config file, then the environment, then command-line flags.

The names are fixed (users script against them): CODEX_HOME, CODEXDASH_DB, CODEXDASH_CODEX.
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
    # The dashboard rings the bell and sends a desktop notification (OSC 9 / OSC 777) through
    # the terminal when a job finishes or stalls; never under TERM=dumb.
    notify_terminal: bool = True

    def with_overrides(self, **overrides: object) -> Settings:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def split_command(value: str, source: str) -> tuple[str, ...]:
    try:
        parts = tuple(shlex.split(value))
    except ValueError as exc:
        raise BadInput(f"{source}: cannot split the Codex command {value!r}: {exc}") from None
    if not parts:
        raise BadInput(f"{source}: the Codex command is empty")
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
    for key in ("refresh_interval", "interrupt_grace", "terminate_grace"):
        if key in data:
            values[key] = _positive_float(data[key], f"{src}: {key}")
    if "notify_terminal" in data:
        if not isinstance(data["notify_terminal"], bool):
            raise BadInput(f"{src}: notify_terminal: expected true or false, got {data['notify_terminal']!r}")
        values["notify_terminal"] = data["notify_terminal"]
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
    return Settings().with_overrides(**values)
