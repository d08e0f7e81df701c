"""Setup on a real box: README's two quick-start commands, the installer behind them, and CI
running exactly README's test command."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INSTALL = ROOT / "install.py"
QUICK_START = ["python3 install.py && ~/.local/bin/codexdash", "python3 install.py --test && .venv/bin/python -m pytest"]


def load_installer():
    spec = importlib.util.spec_from_file_location("codexdash_install", INSTALL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Quick start\s+```sh\n(.*?)```", text, re.S).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def test_readme_quick_start_is_the_two_commands_and_ci_runs_the_second_exactly():
    assert readme_commands() == QUICK_START
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert QUICK_START[1] in ci
    assert ci[-1] == QUICK_START[1]  # the last command: its exit status is CI's


def test_installer_runs_on_old_pythons_far_enough_to_say_what_it_needs():
    # No syntax newer than 3.6 (macOS's /usr/bin/python3 is 3.9): no walrus, no match, no
    # builtin generics in annotations evaluated at run time.
    source = INSTALL.read_text()
    import ast

    tree = ast.parse(source, feature_version=(3, 6))
    assert not any(isinstance(node, (ast.NamedExpr, ast.Match)) for node in ast.walk(tree))
    assert "from __future__" not in source
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)


def test_a_too_old_python_hands_over_to_a_newer_one_or_says_what_to_install(tmp_path, monkeypatch):
    installer = load_installer()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    old = bindir / "python3.10"
    old.write_text("#!/bin/sh\necho 3 10\n")
    old.chmod(0o755)
    assert installer.find_python((3, 11), path=str(bindir)) is None
    new = bindir / "python3.13"
    new.write_text("#!/bin/sh\necho 3 13\n")
    new.chmod(0o755)
    assert installer.find_python((3, 11), path=str(bindir)) == str(new)

    monkeypatch.setattr(installer, "MIN_PYTHON", (3, 99))
    monkeypatch.setattr(installer, "find_python", lambda: None)
    with pytest.raises(installer.InstallError, match=r"needs Python 3\.99 or newer; this is 3\.\d+ .*brew install"):
        installer.ensure_new_python([])


def test_launcher_replaces_its_own_link_and_never_a_foreign_file(tmp_path):
    installer = load_installer()
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "codexdash").write_text("#!/bin/sh\n")
    bin_dir = tmp_path / "home" / ".local" / "bin"
    link = installer.link_launcher(str(venv), str(bin_dir))
    assert os.readlink(link) == str(venv / "bin" / "codexdash")
    os.unlink(link)
    os.symlink("/elsewhere/.venv/bin/codexdash", link)  # an earlier install from another checkout
    installer.link_launcher(str(venv), str(bin_dir))
    assert os.readlink(link) == str(venv / "bin" / "codexdash")
    os.unlink(link)
    Path(link).write_text("someone else's\n")
    with pytest.raises(installer.InstallError, match="not a link this installer made"):
        installer.link_launcher(str(venv), str(bin_dir))
    assert Path(link).read_text() == "someone else's\n"


def test_pip_wheel_is_refused_when_its_sha256_is_not_the_published_one(tmp_path):
    installer = load_installer()
    wheel = tmp_path / "files" / "pip-99.0-py3-none-any.whl"
    wheel.parent.mkdir()
    wheel.write_bytes(b"PK not really a wheel")
    metadata = tmp_path / "pypi" / "pip" / "json"
    metadata.parent.mkdir(parents=True)

    def publish(sha256: str) -> str:
        # A relative URL, as some PyPI mirrors give: resolved against the metadata's address.
        metadata.write_text(json.dumps({"urls": [
            {"packagetype": "sdist", "filename": "pip-99.0.tar.gz", "url": "x", "digests": {"sha256": "0"}},
            {"packagetype": "bdist_wheel", "filename": wheel.name, "url": "../../files/" + wheel.name,
             "digests": {"sha256": sha256}},
        ]}))
        return metadata.as_uri()

    good = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert installer.pip_wheel(publish(good)) == (wheel.name, wheel.read_bytes())
    with pytest.raises(installer.InstallError, match="does not match the SHA-256"):
        installer.pip_wheel(publish("0" * 64))


def pypi_reachable() -> str | None:
    try:
        with urllib.request.urlopen("https://pypi.org/pypi/pip/json", timeout=15) as response:
            response.read(1)
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means: not reachable from here
        return f"PyPI is not reachable from here ({exc}); the installer fetches pip and the dependencies there"


def copy_checkout(dest: Path) -> Path:
    """The project as a clone has it: tracked files only (no .venv, no caches)."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False)
    if files.returncode == 0 and files.stdout:
        for name in files.stdout.decode().split("\0"):
            if name and (ROOT / name).is_file():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, dest / name)
    else:
        shutil.copytree(ROOT, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(
            ".venv", ".git", ".cache", "__pycache__", "*.egg-info", ".pytest_cache", ".hypothesis", "build"))
    shutil.copy2(INSTALL, dest / "install.py")  # the installer as it is now, committed or not
    return dest


def check_installed(checkout: Path, home: Path, result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ensurepip is missing: bringing pip from PyPI" in result.stdout
    launcher = home / ".local" / "bin" / "codexdash"
    assert f"the dashboard: {launcher}" in result.stdout  # it says where
    assert os.readlink(launcher) == str(checkout / ".venv" / "bin" / "codexdash")
    assert subprocess.run([checkout / ".venv" / "bin" / "python", "-m", "pip", "--version"],
                          capture_output=True).returncode == 0
    env = dict(os.environ, HOME=str(home), CODEXDASH_DB=str(home / "jobs.db"), CODEX_HOME=str(home),
               CODEXDASH_CONFIG=str(home / "none.toml"))
    version = subprocess.run([launcher, "--version"], capture_output=True, text=True, env=env, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("codexdash "), version.stderr
    listed = subprocess.run([launcher, "list"], capture_output=True, text=True, env=env, timeout=60)
    assert listed.returncode == 0 and listed.stdout.startswith("no jobs"), listed.stderr


@pytest.mark.timeout(600)
def test_installer_where_ensurepip_is_missing_brings_pip_from_pypi(tmp_path):
    if reason := pypi_reachable():
        pytest.skip(reason)
    checkout = copy_checkout(tmp_path / "checkout")
    home = tmp_path / "home"
    home.mkdir()
    # A package named ensurepip ahead of the standard library's, failing as a missing one does.
    hidden = tmp_path / "hide" / "ensurepip"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('no ensurepip here, as on Debian without python3-venv')\n")
    env = dict(os.environ, HOME=str(home), PYTHONPATH=str(hidden.parent))
    env.pop("VIRTUAL_ENV", None)
    result = subprocess.run([sys.executable, "install.py"], cwd=checkout, env=env, capture_output=True, text=True,
                            timeout=540, stdin=subprocess.DEVNULL)
    check_installed(checkout, home, result)


def debian_python() -> str | None:
    """The system Python of a Debian or Ubuntu box (PEP 668: externally managed), if this is one."""
    python = "/usr/bin/python3"
    if not os.access(python, os.X_OK):
        return None
    done = subprocess.run([python, "-c", "import sys, sysconfig, os; print(sys.version_info >= (3, 11) and "
                           "os.path.exists(os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED')))"],
                          capture_output=True, text=True)
    return python if done.stdout.strip() == "True" else None


@pytest.mark.timeout(600)
def test_on_debian_system_python_without_venv_or_pip_packages_the_first_command_works(tmp_path):
    """A fresh Debian 12 / Ubuntu 24.04: pip refuses the system Python (PEP 668), and without
    python3-venv and python3-pip there is neither ensurepip nor pip. Emulated on this box's own
    system Python by hiding both in a mount namespace."""
    python = debian_python()
    if python is None:
        pytest.skip("not a Debian-like box: no externally managed /usr/bin/python3 of 3.11 or newer")
    if os.getuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("hiding the python3-venv and python3-pip files needs root and unshare for a mount namespace")
    if reason := pypi_reachable():
        pytest.skip(reason)
    checkout = copy_checkout(tmp_path / "checkout")
    home = tmp_path / "home"
    home.mkdir()
    empty = tmp_path / "empty"
    empty.mkdir()
    stdlib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
                            capture_output=True, text=True).stdout.strip()
    hide = [d for d in (f"{stdlib}/ensurepip", "/usr/lib/python3/dist-packages/pip") if os.path.isdir(d)]
    mounts = " && ".join(f"mount --bind {empty} {d}" for d in hide)
    script = (f"{mounts} && cd {checkout} && "
              # Both steps README used to give fail here:
              f"{{ {python} -m pip install . >{tmp_path}/pip.out 2>&1; echo pip=$?; "
              f"{python} -m venv {tmp_path}/trial >{tmp_path}/venv.out 2>&1; echo venv=$?; }} && "
              f"exec {python} install.py")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["HOME"] = str(home)
    result = subprocess.run(["unshare", "-m", "sh", "-c", script], env=env, capture_output=True, text=True,
                            timeout=540, stdin=subprocess.DEVNULL)
    if result.returncode != 0 and "mount" in result.stderr and "ermission" in result.stderr:
        pytest.skip("mount namespaces are not allowed here: " + result.stderr.strip())
    assert "pip=1" in result.stdout and "venv=1" in result.stdout, result.stdout
    check_installed(checkout, home, result)
    assert (checkout / ".venv" / "pyvenv.cfg").read_text().count(str(Path(python).parent)) >= 1
