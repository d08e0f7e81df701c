#!/usr/bin/env python3
"""Installs codexdash from this checkout into a virtual environment of its own.

    python3 install.py          codexdash in .venv, and a launcher at ~/.local/bin/codexdash
    python3 install.py --test   codexdash editable in .venv with the test extras (no launcher)

Standard library only, so that it runs on a fresh box before anything is installed: where the
system Python is managed by the OS (PEP 668: Debian 12, Ubuntu 24.04) pip refuses to install
into it, and where `ensurepip` is missing (Debian and Ubuntu without python3-venv) `python3 -m
venv` cannot make an environment with pip in it. Then the environment is made without pip and
pip is put into it from its wheel on PyPI, checked against the SHA-256 PyPI publishes.

Needs Python 3.11 or newer; an older `python3` (macOS ships 3.9) hands over to a newer one on
PATH when there is one. Written in the syntax of old Pythons so that they can say so.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request

MIN_PYTHON = (3, 11)
ROOT = os.path.dirname(os.path.abspath(__file__))
PIP_METADATA = "https://pypi.org/pypi/pip/json"
LAUNCHER_NAME = "codexdash"


class InstallError(Exception):
    """One line for the user, exit 1."""


def say(message):
    print("install.py: " + message, flush=True)


# ---- a Python new enough -------------------------------------------------------------------

def python_version(executable):
    """(major, minor) of a Python executable, or None when it does not run."""
    try:
        done = subprocess.run([executable, "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              universal_newlines=True, timeout=30)
        major, minor = done.stdout.split()
        return int(major), int(minor)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


def find_python(minimum=MIN_PYTHON, path=None):
    """A Python of at least `minimum` on PATH or where macOS installers put one, newest first."""
    dirs = (path if path is not None else os.environ.get("PATH", "")).split(os.pathsep)
    if path is None:
        dirs += ["/opt/homebrew/bin", "/usr/local/bin"]
        dirs += ["/Library/Frameworks/Python.framework/Versions/3.%d/bin" % m for m in range(20, minimum[1] - 1, -1)]
    for minor in range(20, minimum[1] - 1, -1):
        for directory in dirs:
            candidate = os.path.join(directory, "python3.%d" % minor)
            if os.access(candidate, os.X_OK) and (python_version(candidate) or (0, 0)) >= minimum:
                return candidate
    return None


def ensure_new_python(argv):
    """Re-runs this installer with a new enough Python when the current one is too old."""
    if sys.version_info[:2] >= MIN_PYTHON:
        return
    have = "%d.%d" % sys.version_info[:2]
    other = find_python()
    if other is None or os.environ.get("CODEXDASH_INSTALL_HANDED_OVER"):
        raise InstallError(
            "codexdash needs Python %d.%d or newer; this is %s and no newer python3.x is on PATH "
            "(macOS: brew install python@3.12, or the installer from python.org; Debian/Ubuntu: "
            "apt-get install python3)" % (MIN_PYTHON + (have,)))
    say("Python %s is too old; using %s" % (have, other))
    env = dict(os.environ, CODEXDASH_INSTALL_HANDED_OVER="1")
    sys.stdout.flush()
    os.execve(other, [other, os.path.abspath(__file__)] + argv, env)


# ---- the virtual environment ---------------------------------------------------------------

def venv_python(venv):
    return os.path.join(venv, "bin", "python")


def runs(command):
    return subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def has_ensurepip(python):
    """Whether `python -m venv` can put pip into an environment: ensurepip is there for real
    (Debian without python3-venv has none, and a directory left empty counts as none)."""
    return runs([python, "-c", "import ensurepip, sys; sys.exit(0 if ensurepip.__file__ else 1)"])


def make_venv(venv):
    """Makes (or repairs) the environment; returns whether pip must be brought in by hand."""
    python = venv_python(venv)
    if os.path.exists(python):
        version = python_version(python)
        if version is not None and version >= MIN_PYTHON:
            say("using the virtual environment %s (Python %d.%d)" % ((venv,) + version))
            return not runs([python, "-m", "pip", "--version"])
        if not os.path.exists(os.path.join(venv, "pyvenv.cfg")):
            raise InstallError("%s is in the way and is not a virtual environment: move it away" % venv)
        say("the virtual environment %s does not work (its Python moved?); making it again" % venv)
        shutil.rmtree(venv)
    elif os.path.exists(venv) and os.listdir(venv):
        if not os.path.exists(os.path.join(venv, "pyvenv.cfg")):
            raise InstallError("%s is in the way and is not a virtual environment: move it away" % venv)
        shutil.rmtree(venv)  # a half-made one, e.g. from a `python3 -m venv` that failed
    with_pip = has_ensurepip(sys.executable)
    command = [sys.executable, "-m", "venv"] + ([] if with_pip else ["--without-pip"]) + [venv]
    done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True)
    if done.returncode != 0 and with_pip:
        # ensurepip is there but failed (some distributions strip its wheels): do without it.
        shutil.rmtree(venv, ignore_errors=True)
        with_pip = False
        done = subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    if done.returncode != 0:
        last = (done.stdout.strip().splitlines() or ["no output"])[-1]
        raise InstallError("cannot make a virtual environment with %s: %s" % (sys.executable, last))
    say("made the virtual environment %s (Python %d.%d%s)" % (
        venv, sys.version_info[0], sys.version_info[1], "" if with_pip else ", without ensurepip"))
    return not with_pip


# ---- pip from PyPI, where ensurepip is missing ---------------------------------------------

def fetch(url, timeout=60):
    """The bytes at `url`: urllib first; curl where urllib cannot (e.g. a Python without CA
    certificates), as both honour the proxy variables."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        error = exc
    if shutil.which("curl"):
        done = subprocess.run(["curl", "-fsSL", "--max-time", str(timeout * 5), url], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if done.returncode == 0:
            return done.stdout
    raise InstallError("cannot download %s: %s" % (url, getattr(error, "reason", error)))


def pip_wheel(metadata_url=PIP_METADATA):
    """pip's newest universal wheel: (file name, bytes), its SHA-256 checked."""
    try:
        release = json.loads(fetch(metadata_url).decode("utf-8"))
        wheel = next(f for f in release["urls"] if f["packagetype"] == "bdist_wheel" and f["filename"].endswith("-py3-none-any.whl"))
        name, sha256 = wheel["filename"], wheel["digests"]["sha256"]
        url = urllib.parse.urljoin(metadata_url, wheel["url"])  # absolute on pypi.org, relative on some mirrors
    except (ValueError, KeyError, StopIteration, TypeError):
        raise InstallError("PyPI's description of pip (%s) is not what this installer understands" % metadata_url)
    if "/" in name or not name.startswith("pip-"):
        raise InstallError("PyPI names pip's wheel %r: refusing it" % name)
    data = fetch(url)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise InstallError("the pip wheel from %s does not match the SHA-256 PyPI publishes: not installed" % url)
    return name, data


def bootstrap_pip(python):
    """Installs pip into the environment of `python` from its wheel: pip runs from the wheel
    itself (a wheel is a zip Python can import from) to install that same wheel."""
    say("ensurepip is missing: bringing pip from PyPI")
    name, data = pip_wheel()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = os.path.join(tmp, name)
        with open(wheel, "wb") as fh:
            fh.write(data)
        done = subprocess.run([python, os.path.join(wheel, "pip"), "install", "--no-index", "--quiet",
                               "--disable-pip-version-check", wheel], stdin=subprocess.DEVNULL)
    if done.returncode != 0 or not runs([python, "-m", "pip", "--version"]):
        raise InstallError("pip did not install from %s" % name)
    say("installed %s" % name[: -len("-py3-none-any.whl")].replace("-", " "))


# ---- codexdash and its launcher ------------------------------------------------------------

def install_project(python, test):
    target = ROOT + ("[test]" if test else "")
    command = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    command += ["--editable", target] if test else [target]
    say("installing codexdash%s and its dependencies from PyPI (a minute on a fresh box)..."
        % (" (editable) with the test extras" if test else ""))
    if subprocess.run(command, stdin=subprocess.DEVNULL).returncode != 0:
        raise InstallError("pip could not install codexdash (its messages are above)")


def link_launcher(venv, bin_dir):
    """~/.local/bin/codexdash -> .venv/bin/codexdash. Replaces a link (an earlier install, maybe
    from another checkout), never a file someone else put there."""
    target = os.path.join(venv, "bin", LAUNCHER_NAME)
    link = os.path.join(bin_dir, LAUNCHER_NAME)
    if not os.path.exists(target):
        raise InstallError("%s is missing after the install" % target)
    os.makedirs(bin_dir, exist_ok=True)
    if os.path.islink(link):
        os.unlink(link)
    elif os.path.lexists(link):
        raise InstallError("%s exists and is not a link this installer made: move it away, or run %s" % (link, target))
    os.symlink(target, link)
    return link


def on_path(directory):
    wanted = os.path.realpath(directory)
    return any(os.path.realpath(d) == wanted for d in os.environ.get("PATH", "").split(os.pathsep) if d)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="install.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--test", action="store_true", help="install editable with the test extras, for running the tests")
    parser.add_argument("--venv", default=os.path.join(ROOT, ".venv"), help="the virtual environment (default: .venv here)")
    parser.add_argument("--bin-dir", default=os.path.join(os.path.expanduser("~"), ".local", "bin"),
                        help="where the codexdash launcher goes (default: ~/.local/bin)")
    args = parser.parse_args(argv)
    try:
        ensure_new_python(argv)
        venv = os.path.abspath(args.venv)
        if make_venv(venv):
            bootstrap_pip(venv_python(venv))
        install_project(venv_python(venv), args.test)
        if args.test:
            say("done; run the tests: %s -m pytest" % os.path.relpath(venv_python(venv)))
            return 0
        link = link_launcher(venv, os.path.abspath(os.path.expanduser(args.bin_dir)))
        say("done; the dashboard: %s" % link)
        if not on_path(os.path.dirname(link)):
            say("%s is not on your PATH: run it by that name, or add the directory to PATH "
                "(export PATH=\"%s:$PATH\" in your shell's profile)" % (link, os.path.dirname(link)))
        return 0
    except InstallError as exc:
        sys.stderr.write("install.py: %s\n" % exc)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
