"""The core never imports the UI toolkit: the CLI stays fast and usable without a terminal UI."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import codexdash

CORE = [m.name for m in pkgutil.iter_modules(codexdash.__path__) if not m.ispkg and m.name != "__main__"]


@pytest.mark.parametrize("module", CORE)
def test_core_module_does_not_import_textual(module):
    code = f"import sys, codexdash.{module}; sys.exit(3 if 'textual' in sys.modules or 'rich' in sys.modules else 0)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"codexdash.{module} pulls in textual or rich: {done.stderr}"


def test_cli_commands_other_than_the_dashboard_do_not_load_it(sandbox):
    code = ("import sys; from codexdash.cli import main; main(['list']); "
            "sys.exit(3 if 'textual' in sys.modules else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=sandbox.env(), timeout=60)
    assert done.returncode == 0, done.stderr
