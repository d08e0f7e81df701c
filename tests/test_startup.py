"""A cold `codexdash list` loads only what it uses: no UI toolkit, no ORM or process library
when the store and the processes can be read directly, no platformdirs for the plain case."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import platformdirs
import pytest

from codexdash import config


@pytest.mark.parametrize("env", [
    {"HOME": "/home/op"},
    {"HOME": "/home/op/"},
    {"HOME": "/"},
    {"HOME": "/home/op", "XDG_DATA_HOME": "", "XDG_CONFIG_HOME": ""},
    {"HOME": "/home/op", "XDG_DATA_HOME": "/srv/data", "XDG_CONFIG_HOME": "/srv/conf"},
    {"HOME": "/home/op", "XDG_DATA_HOME": "relative/data", "XDG_CONFIG_HOME": "~/conf"},
    {"HOME": "relative"},
])
def test_default_paths_are_platformdirs_answers(monkeypatch, env):
    for key in ("HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "ANDROID_DATA"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    try:
        expected = (Path(platformdirs.user_data_dir("codexdash")) / "jobs.db",
                    Path(platformdirs.user_config_dir("codexdash")) / "config.toml")
    except RuntimeError:  # platformdirs refuses a home it cannot resolve: so does codexdash
        with pytest.raises(RuntimeError):
            config.default_db_path()
        return
    assert (config.default_db_path(), config.default_config_path()) == expected
