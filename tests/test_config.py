"""Settings are checked for type and range when they are read: a bad one is one line naming it,
exit 2, before anything else happens."""

from __future__ import annotations

from pathlib import Path

import pytest

from codexdash.config import RANGES, Settings, load_settings
from codexdash.errors import BadInput


def load(tmp_path: Path, text: str | bytes | None = None, env: dict[str, str] | None = None, **flags):
    path = tmp_path / "config.toml"
    if text is not None:
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    warnings: list[str] = []
    settings = load_settings(env or {}, path, warn=warnings.append, **flags)
    return settings, warnings


BAD_FILES = [
    # (file contents, the setting the message must name, a word of the reason)
    ("interrupt_grace = nan", "interrupt_grace", "nan"),
    ("interrupt_grace = inf", "interrupt_grace", "inf"),
    ("terminate_grace = -inf", "terminate_grace", "inf"),
    ("terminate_grace = 1e308", "terminate_grace", "at most 3600"),
    ("interrupt_grace = 0", "interrupt_grace", "more than 0"),
    ("interrupt_grace = -1", "interrupt_grace", "more than 0"),
    ("interrupt_grace = 3600.5", "interrupt_grace", "at most 3600"),
    ("interrupt_grace = true", "interrupt_grace", "boolean"),
    ('terminate_grace = "3"', "terminate_grace", "string"),
    ("refresh_interval = nan", "refresh_interval", "nan"),
    ("refresh_interval = 0.05", "refresh_interval", "0.1 or more"),
    ("refresh_interval = 61", "refresh_interval", "at most 60"),
    ("refresh_interval = [1]", "refresh_interval", "array"),
    ("codex = []", "codex", "empty"),
    ('codex = ""', "codex", "empty"),
    ('codex = "  "', "codex", "empty"),
    ("codex = [1, 2]", "codex", "integer"),
    ('codex = ["", "x"]', "codex", "empty"),
    ('codex = ["codex\\u0000"]', "codex", "NUL"),
    ("codex = 5", "codex", "integer"),
    ("codex = {a = 1}", "codex", "table"),
    ("codex = \"codex 'unclosed\"", "codex", "cannot split"),
    ('db = "\\u0000x"', "db", "NUL"),
    ("db = {a=1}", "db", "table"),
    ("db = 5", "db", "integer"),
    ('db = ""', "db", "empty"),
    ("codex_home = 5", "codex_home", "integer"),
    ("codex_home = []", "codex_home", "array"),
    ('codex_home = "a\\u0000b"', "codex_home", "NUL"),
    ("codex_home = 1979-05-27", "codex_home", "date"),
]


@pytest.mark.parametrize(("text", "key", "why"), BAD_FILES)
def test_bad_value_in_the_file_is_refused_naming_the_setting(tmp_path, text, key, why):
    with pytest.raises(BadInput) as caught:
        load(tmp_path, text)
    message = str(caught.value)
    assert caught.value.exit_code == 2
    assert f": {key}" in message and "config file" in message and str(tmp_path) in message
    assert why in message, message
    assert "\n" not in message and "\0" not in message


def test_a_directory_as_database_is_refused(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(BadInput, match="db .* is a directory"):
        load(tmp_path, f'db = "{tmp_path / "d"}"')


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b'db = "\xff\xfe"\n', "not valid UTF-8 (byte 0xff at offset 6)"),
        (b"refresh_interval = = 2\n", "Invalid value"),
        (b"[a]\nb = 1\n[a]\n", "Cannot declare"),
    ],
)
def test_a_broken_file_is_one_line(tmp_path, data, why):
    with pytest.raises(BadInput) as caught:
        load(tmp_path, data)
    assert why in str(caught.value) and "config file" in str(caught.value) and "\n" not in str(caught.value)


def test_a_config_path_that_is_a_directory_is_one_line(tmp_path):
    with pytest.raises(BadInput, match="cannot read it: Is a directory"):
        load_settings({}, tmp_path)


def test_a_missing_file_gives_the_defaults(tmp_path):
    settings, warnings = load(tmp_path)
    assert settings == Settings() and warnings == []


@pytest.mark.parametrize(
    ("env", "name", "why"),
    [
        ({"CODEXDASH_DB": "/tmp/a\0b"}, "CODEXDASH_DB", "NUL"),
        # Invalid UTF-8 in the environment reaches Python as lone surrogates; SQLite needs UTF-8.
        ({"CODEXDASH_DB": "/tmp/\udcff.db"}, "CODEXDASH_DB", "not valid UTF-8"),
        ({"CODEXDASH_DB": "/"}, "CODEXDASH_DB", "is a directory"),
        ({"CODEX_HOME": "\0"}, "CODEX_HOME", "NUL"),
        ({"CODEXDASH_CODEX": "codex\0"}, "CODEXDASH_CODEX", "NUL"),
        ({"CODEXDASH_CODEX": "codex 'x"}, "CODEXDASH_CODEX", "cannot split"),
        ({"CODEXDASH_CODEX": "   "}, "CODEXDASH_CODEX", "empty"),
        ({"CODEXDASH_CONFIG": "/x\0"}, "CODEXDASH_CONFIG", "NUL"),
    ],
)
def test_bad_environment_is_refused_naming_the_variable(env, name, why):
    with pytest.raises(BadInput) as caught:
        load_settings(env, None if "CODEXDASH_CONFIG" in env else Path("/nonexistent/config.toml"))
    assert str(caught.value).startswith(name) and why in str(caught.value), str(caught.value)


@pytest.mark.parametrize(
    ("flags", "name"),
    [({"db": ""}, "--db"), ({"db": "a\0"}, "--db"), ({"codex_home": ""}, "--codex-home"), ({"codex": ""}, "--codex")],
)
def test_bad_flags_are_refused_naming_the_flag(tmp_path, flags, name):
    with pytest.raises(BadInput, match=f"^{name}"):
        load(tmp_path, **flags)


def test_edges_of_the_ranges_are_accepted(tmp_path):
    settings, warnings = load(
        tmp_path, "refresh_interval = 0.1\ninterrupt_grace = 3600\nterminate_grace = 0.001\n"
        'codex = ["node", "/opt/codex.js", ""]\ndb = "~/jobs.db"\n',
    )
    assert (settings.refresh_interval, settings.interrupt_grace, settings.terminate_grace) == (0.1, 3600.0, 0.001)
    assert settings.codex_command == ("node", "/opt/codex.js", "")
    assert settings.db_path == Path("~/jobs.db").expanduser()
    assert warnings == []
    settings, _ = load(tmp_path, "refresh_interval = 60\ninterrupt_grace = 5\n")  # integers are numbers
    assert settings.refresh_interval == 60.0 and settings.interrupt_grace == 5.0
    assert set(RANGES) == {"refresh_interval", "interrupt_grace", "terminate_grace", "notify_timeout", "stall_after"}


def test_unknown_keys_are_one_warning_each_and_the_rest_applies(tmp_path):
    settings, warnings = load(tmp_path, 'interupt_grace = 1\n"x\\u001b[31m" = 2\ninterrupt_grace = 2\n')
    assert settings.interrupt_grace == 2.0
    assert len(warnings) == 2
    assert "unknown setting 'interupt_grace' ignored (did you mean 'interrupt_grace'?)" in warnings[0]
    assert "\x1b" not in warnings[1] and "known: codex_home, db, codex" in warnings[1]


def test_environment_overrides_the_file_and_flags_override_both(tmp_path):
    text = f'db = "{tmp_path / "file.db"}"\ncodex_home = "{tmp_path}"\ncodex = "file-codex"\n'
    settings, _ = load(tmp_path, text)
    assert settings.db_path == tmp_path / "file.db" and settings.codex_command == ("file-codex",)
    env = {"CODEXDASH_DB": str(tmp_path / "env.db"), "CODEXDASH_CODEX": "env-codex --x 'a b'", "CODEX_HOME": "",
           "CODEXDASH_CONFIG": str(tmp_path / "ignored-when-a-path-is-given.toml")}
    settings, _ = load(tmp_path, text, env)
    assert settings.db_path == tmp_path / "env.db" and settings.codex_command == ("env-codex", "--x", "a b")
    assert settings.codex_home == tmp_path  # an empty variable counts as unset
    settings, _ = load(tmp_path, text, env, db=str(tmp_path / "flag.db"), codex="flag-codex")
    assert settings.db_path == tmp_path / "flag.db" and settings.codex_command == ("flag-codex",)


def test_a_bad_file_value_is_refused_even_when_the_environment_overrides_it(tmp_path):
    # The file is wrong whatever overrides it today: say so now, not the day the variable is unset.
    with pytest.raises(BadInput, match="db"):
        load(tmp_path, "db = {a=1}", {"CODEXDASH_DB": str(tmp_path / "ok.db")})


# The command line: every bad setting stops `codexdash list` with one line naming it.
CLI_CASES = [
    ("interrupt_grace = nan", "interrupt_grace"),
    ("terminate_grace = inf", "terminate_grace"),
    ("interrupt_grace = 1e308", "interrupt_grace"),
    ("refresh_interval = nan", "refresh_interval"),
    ("codex = []", "codex"),
    ('db = "\\u0000x"', "db"),
    ("db = {a=1}", "db"),
    ("codex_home = 5", "codex_home"),
]


@pytest.mark.parametrize(("text", "key"), CLI_CASES)
def test_cli_with_a_bad_config_exits_2_with_one_line(sandbox, text, key):
    (sandbox.root / "config.toml").write_text(text + "\n")
    result = sandbox.cli("list", CODEXDASH_DB="", CODEX_HOME="", CODEXDASH_CODEX="")
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"config file {sandbox.root / 'config.toml'}: {key}" in lines[0]
    assert result.stdout == ""
    assert not (sandbox.root / "{'a': 1}").exists()


def test_cli_with_invalid_utf8_in_the_config_exits_2_with_one_line(sandbox):
    (sandbox.root / "config.toml").write_bytes(b'codex = "\xc3\x28"\n')
    result = sandbox.cli("list")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "not valid UTF-8" in result.stderr and "Traceback" not in result.stderr


def test_cli_warns_once_about_an_unknown_key_and_runs(sandbox):
    (sandbox.root / "config.toml").write_text("refresh_intervall = 2\n")
    result = sandbox.cli("list")
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"codexdash: warning: config file {sandbox.root / 'config.toml'}: unknown setting 'refresh_intervall' "
        "ignored (did you mean 'refresh_interval'?)"
    ]
