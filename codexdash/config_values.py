"""The settings as values: defaults, then the config file, then the environment, then
command-line flags, read and checked; config.Settings holds them.

The names are fixed (users script against them): CODEX_HOME, CODEXDASH_DB, CODEXDASH_CODEX,
CODEXDASH_NOTIFY_COMMAND, and
for other boxes CODEXDASH_HOSTS, CODEXDASH_SSH, CODEXDASH_REMOTE (`hosts`, `ssh`, `remote_command`).

Every value is checked here, once, when it is read: its type and its range. A bad one is a
BadInput (exit 2) naming the setting and where it came from; nothing else in codexdash has to
wonder whether a grace period can be NaN or a path can hold a NUL.
"""

from __future__ import annotations

import math
import os
import shlex
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from codexdash.errors import BadInput

APP_NAME = "codexdash"
MARKER_ENV = "CODEXDASH_JOB"
# A live job whose session file has not grown for this long is stalled (the default of
# `stall_after`: the dashboard's ⚠ and the `stalled` notification use the same threshold).
STALL_SECONDS = 120.0

# Ranges of the numeric settings, in seconds: (lowest, highest, whether the lowest is allowed).
# A refresh faster than 0.1 s only burns CPU; slower than a minute the table is not live. A
# grace period must let Codex act on the signal at all, and an hour is already longer than
# anyone waits for a kill to finish.
RANGES: dict[str, tuple[float, float, bool]] = {
    "refresh_interval": (0.1, 60.0, True),
    "interrupt_grace": (0.0, 3600.0, False),
    "terminate_grace": (0.0, 3600.0, False),
    # A hook gets at most an hour; a job counts as stalled after a second to a day of silence.
    "notify_timeout": (0.0, 3600.0, False),
    "stall_after": (1.0, 86400.0, True),
}
FILE_KEYS = ("codex_home", "db", "codex", "notify_command", "watch", "notify_terminal", "hosts", "ssh", "remote_command", *RANGES)


def _user_dir(kind: str) -> Path:
    """This user's data or config directory for codexdash, as platformdirs gives it. Where its
    answer is plain, the XDG default under an absolute $HOME on Linux with no XDG variable
    set, it is made here: importing platformdirs took longer than all the rest of `list`'s
    settings. Anywhere else platformdirs answers."""
    xdg, default = {"data": ("XDG_DATA_HOME", ".local/share"), "config": ("XDG_CONFIG_HOME", ".config")}[kind]
    home = os.environ.get("HOME", "")
    if sys.platform == "linux" and not os.environ.get(xdg) and "ANDROID_DATA" not in os.environ and os.path.isabs(home):
        return Path(home.rstrip("/") or "/", default, APP_NAME)
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME) if kind == "data" else platformdirs.user_config_dir(APP_NAME))


def default_db_path() -> Path:
    return _user_dir("data") / "jobs.db"


def default_config_path() -> Path:
    return _user_dir("config") / "config.toml"


def _kind(value: object) -> str:
    """The name a user knows a value by: TOML's words for what the file held."""
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array", dict: "a table"}
    text = repr(value)
    return f"{names.get(type(value), type(value).__name__)} {text if len(text) <= 40 else text[:37] + '...'}"


def _shown(value: str) -> str:
    """A value quoted for a message on one line: control characters, bidi overrides and
    undecodable bytes escaped (repr does all three), long values cut."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _path(value: object, name: str, *, sqlite: bool = False) -> Path:
    if not isinstance(value, str):
        raise BadInput(f"{name} must be a path (a string), got {_kind(value)}")
    if not value:
        raise BadInput(f"{name} is empty")
    if "\0" in value:
        raise BadInput(f"{name} contains a NUL character: {_shown(value)}")
    if sqlite:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise BadInput(f"{name} is not valid UTF-8, which SQLite needs in file names: {_shown(value)}") from None
    path = Path(value).expanduser()
    if sqlite and path.is_dir():
        raise BadInput(f"{name} {_shown(str(path))} is a directory, not a database file")
    return path


def split_command(value: str, name: str, what: str = "the Codex command") -> tuple[str, ...]:
    """A command from one string, split like a shell."""
    if "\0" in value:
        raise BadInput(f"{name} contains a NUL character: {_shown(value)}")
    try:
        parts = tuple(shlex.split(value))
    except ValueError as exc:
        raise BadInput(f"{name}: cannot split {what} {_shown(value)}: {exc}") from None
    if not parts:
        raise BadInput(f"{name}: {what} is empty")
    return parts


def _command(value: object, name: str, what: str = "the Codex command") -> tuple[str, ...]:
    if isinstance(value, str):
        return split_command(value, name, what)
    if not isinstance(value, list):
        raise BadInput(f"{name} must be a command (a string, or an array of strings), got {_kind(value)}")
    if not value:
        raise BadInput(f"{name}: {what} is empty")
    for part in value:
        if not isinstance(part, str):
            raise BadInput(f"{name} must be an array of strings; it holds {_kind(part)}")
        if "\0" in part:
            raise BadInput(f"{name} contains a NUL character: {_shown(part)}")
    if not value[0]:
        raise BadInput(f"{name}: the program (its first element) is empty")
    return tuple(value)


def seconds(value: object, name: str, key: str) -> float:
    """A number of seconds within the range of setting `key`: never NaN, never infinite."""
    low, high, low_ok = RANGES[key]
    bounds = f"{'' if low_ok else 'more than '}{low:g}{' or more' if low_ok else ''} and at most {high:g}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadInput(f"{name} must be a number of seconds ({bounds}), got {_kind(value)}")
    number = float(value)
    if not math.isfinite(number) or number > high or number < low or (number == low and not low_ok):
        raise BadInput(f"{name} must be a number of seconds, {bounds}; got {value!r}")
    return number


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


def _where(path: Path) -> str:
    text = str(path)
    return f"config file {text if text.isprintable() else _shown(text)}"


def _read_file(path: Path) -> dict[str, object]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise BadInput(f"{_where(path)}: cannot read it: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{_where(path)}: not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None
    import tomllib  # only when there is a file

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{_where(path)}: {exc}") from None


def _from_file(path: Path, warn: Callable[[str], None]) -> dict[str, object]:
    data = _read_file(path)
    src = _where(path)
    for key in data:
        if key not in FILE_KEYS:
            import difflib

            near = difflib.get_close_matches(key, FILE_KEYS, n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"known: {', '.join(FILE_KEYS)}"
            warn(f"{src}: unknown setting {_shown(key)} ignored ({hint})")
    values: dict[str, object] = {}
    if "codex_home" in data:
        values["codex_home"] = _path(data["codex_home"], f"{src}: codex_home")
    if "db" in data:
        values["db_path"] = _path(data["db"], f"{src}: db", sqlite=True)
    if "codex" in data:
        values["codex_command"] = _command(data["codex"], f"{src}: codex")
    if "notify_command" in data:
        values["notify_command"] = _command(data["notify_command"], f"{src}: notify_command", "the notify command")
    for key in RANGES:
        if key in data:
            values[key] = seconds(data[key], f"{src}: {key}", key)
    if "hosts" in data:
        if not isinstance(data["hosts"], list):
            raise BadInput(f"{src}: hosts must be a list of names, e.g. hosts = [\"box1\", \"gpu-2\"]")
        values["hosts"] = host_names(data["hosts"], f"{src}: hosts")
    if "ssh" in data:
        values["ssh_command"] = _command(data["ssh"], f"{src}: ssh", "the ssh command")
    if "remote_command" in data:
        values["remote_command"] = _remote_command(data["remote_command"], f"{src}: remote_command")
    for flag in ("watch", "notify_terminal"):
        if flag in data:
            if not isinstance(data[flag], bool):
                raise BadInput(f"{src}: {flag} must be true or false, got {_kind(data[flag])}")
            values[flag] = data[flag]
    return values


def _remote_command(value: object, source: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f"{source}: the command run on a box must be a non-empty string")
    return value.strip()


def _warn_on_stderr(message: str) -> None:
    sys.stderr.write(f"codexdash: warning: {message}\n")


def read_settings(
    env: Mapping[str, str] | None = None,
    config_path: Path | None = None,
    *,
    db: str | None = None,
    codex_home: str | None = None,
    codex: str | None = None,
    warn: Callable[[str], None] = _warn_on_stderr,
) -> dict[str, object]:
    """The settings given by the config file, the environment, then the flags given (None: not
    given), as the keyword arguments of config.Settings; those not given are left out.

    Raises BadInput naming the first bad setting; an unknown key in the file is a warning."""
    env = os.environ if env is None else env
    if config_path is None:
        given = env.get("CODEXDASH_CONFIG")
        config_path = _path(given, "CODEXDASH_CONFIG") if given else default_config_path()
    values = _from_file(Path(config_path), warn)
    # An empty variable counts as unset, as shells and most tools treat it.
    if env.get("CODEX_HOME"):
        values["codex_home"] = _path(env["CODEX_HOME"], "CODEX_HOME")
    if env.get("CODEXDASH_DB"):
        values["db_path"] = _path(env["CODEXDASH_DB"], "CODEXDASH_DB", sqlite=True)
    if env.get("CODEXDASH_CODEX"):
        values["codex_command"] = split_command(env["CODEXDASH_CODEX"], "CODEXDASH_CODEX")
    if env.get("CODEXDASH_NOTIFY_COMMAND"):
        values["notify_command"] = split_command(
            env["CODEXDASH_NOTIFY_COMMAND"], "CODEXDASH_NOTIFY_COMMAND", "the notify command")
    if "CODEXDASH_HOSTS" in env:  # set but empty: no other boxes, whatever the file says
        values["hosts"] = host_names([h.strip() for h in env["CODEXDASH_HOSTS"].split(",") if h.strip()], "CODEXDASH_HOSTS")
    if env.get("CODEXDASH_SSH"):
        values["ssh_command"] = split_command(env["CODEXDASH_SSH"], "CODEXDASH_SSH", "the ssh command")
    if env.get("CODEXDASH_REMOTE"):
        values["remote_command"] = _remote_command(env["CODEXDASH_REMOTE"], "CODEXDASH_REMOTE")
    if codex_home is not None:
        values["codex_home"] = _path(codex_home, "--codex-home")
    if db is not None:
        values["db_path"] = _path(db, "--db", sqlite=True)
    if codex is not None:
        values["codex_command"] = split_command(codex, "--codex")
    # The defaults of the paths given are not worked out.
    return {k: v for k, v in values.items() if v is not None}
