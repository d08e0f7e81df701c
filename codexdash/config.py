"""Settings: defaults, then the config file, then the environment, then command-line flags.

The names are fixed (users script against them): CODEX_HOME, CODEXDASH_DB, CODEXDASH_CODEX, and
for other boxes CODEXDASH_HOSTS, CODEXDASH_SSH, CODEXDASH_REMOTE (`hosts`, `ssh`, `remote_command`).
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
    # Other boxes, as the operator's ssh knows them; the ssh command (split like a shell); and
    # the command run there (shell text for the box's login shell).
    hosts: tuple[str, ...] = ()
    ssh_command: tuple[str, ...] = ("ssh",)
    remote_command: str = "codexdash"

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


def host_names(names: list[object], source: str) -> tuple[str, ...]:
    """Box names as given, checked: each must reach ssh as one host argument, never an option."""
    seen: list[str] = []
    for name in names:
        if not isinstance(name, str) or not name:
            raise BadInput(f"{source}: a host must be a non-empty name, got {name!r}")
        if name.startswith("-") or not name.isprintable() or any(c.isspace() for c in name):
            raise BadInput(f"{source}: {name!r} is not a host name (no spaces, control characters or leading '-')")
        if name == "local":
            raise BadInput(f"{source}: 'local' names this box; leave it out of the hosts")
        if name not in seen:
            seen.append(name)
    return tuple(seen)


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
    if "hosts" in data:
        if not isinstance(data["hosts"], list):
            raise BadInput(f"{src}: hosts must be a list of names, e.g. hosts = [\"box1\", \"gpu-2\"]")
        values["hosts"] = host_names(data["hosts"], f"{src}: hosts")
    if "ssh" in data:
        ssh = data["ssh"]
        values["ssh_command"] = tuple(str(p) for p in ssh) if isinstance(ssh, list) else split_command(str(ssh), f"{src}: ssh")
    if "remote_command" in data:
        values["remote_command"] = _remote_command(data["remote_command"], f"{src}: remote_command")
    return values


def _remote_command(value: object, source: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f"{source}: the command run on a box must be a non-empty string")
    return value.strip()


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
    if "CODEXDASH_HOSTS" in env:  # set but empty: no other boxes, whatever the file says
        values["hosts"] = host_names([h.strip() for h in env["CODEXDASH_HOSTS"].split(",") if h.strip()], "CODEXDASH_HOSTS")
    if env.get("CODEXDASH_SSH"):
        values["ssh_command"] = split_command(env["CODEXDASH_SSH"], "CODEXDASH_SSH")
    if env.get("CODEXDASH_REMOTE"):
        values["remote_command"] = _remote_command(env["CODEXDASH_REMOTE"], "CODEXDASH_REMOTE")
    return Settings().with_overrides(**values)
