"""The real Codex CLI releases the suite runs, installed from npm once into .cache/ and kept.

Every real-Codex test runs against each release in RELEASES, in both program shapes:
- "wrapper": `bin/codex.js` under this machine's Node, which spawns the native binary as its
  child on Node < 22.15 (and execs it in place on newer Node);
- "native": the native binary run directly, the process Codex is once Node has exec'd it.

Other releases: CODEXDASH_REAL_CODEX_VERSIONS=0.169.0,0.172.0 python3 -m pytest -m real_codex
(CODEXDASH_REAL_CODEX_VERSION=X, one release, still works).
"""

from __future__ import annotations

import fcntl
import glob
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.mock_model_server import MockModelServer

DEFAULT_RELEASES = ("0.169.0", "0.171.0")
CACHE = Path(__file__).resolve().parent.parent / ".cache" / "codex-npm"
SHAPES = ("wrapper", "native")


def releases() -> tuple[str, ...]:
    chosen = os.environ.get("CODEXDASH_REAL_CODEX_VERSIONS") or os.environ.get("CODEXDASH_REAL_CODEX_VERSION")
    if not chosen:
        return DEFAULT_RELEASES
    return tuple(v.strip() for v in chosen.split(",") if v.strip())


RELEASES = releases()


@dataclass(frozen=True)
class RealCodex:
    version: str
    wrapper: Path  # node_modules/.bin/codex -> @openai/codex/bin/codex.js
    native: Path  # the native binary from the platform package

    def program(self, shape: str) -> Path:
        return self.wrapper if shape == "wrapper" else self.native


def _programs(folder: Path) -> tuple[Path, Path] | None:
    wrapper = folder / "node_modules" / ".bin" / "codex"
    natives = sorted(glob.glob(str(folder / "node_modules" / "@openai" / "codex-*" / "vendor" / "*" / "bin" / "codex")))
    if not wrapper.exists() or not natives:
        return None
    return wrapper, Path(natives[0])


def _answers(native: Path, version: str) -> bool:
    try:
        done = subprocess.run([str(native), "--version"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and done.stdout.split()[-1:] == [version]


def install(version: str) -> RealCodex:
    """The release, from .cache/codex-npm/<version>, installed there first if it is missing.

    npm installs into a folder of its own that is renamed into place when complete, under a lock
    that other test runs sharing the cache take too: a reader never sees half an install.
    """
    folder = CACHE / version
    found = _programs(folder)
    if found is None:
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed: the real Codex CLI cannot be fetched")
        CACHE.mkdir(parents=True, exist_ok=True)
        with open(CACHE / f".{version}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            found = _programs(folder)
            if found is None:
                if folder.exists():
                    pytest.fail(f"{folder} holds an incomplete install: remove it (or wait for the npm install into it to end)")
                staging = CACHE / f".{version}.installing-{os.getpid()}"
                shutil.rmtree(staging, ignore_errors=True)
                done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", str(staging), f"@openai/codex@{version}"],
                                      capture_output=True, text=True, timeout=1200, stdin=subprocess.DEVNULL)
                if done.returncode != 0:
                    shutil.rmtree(staging, ignore_errors=True)
                    pytest.fail(f"npm install @openai/codex@{version} failed: {done.stderr[-2000:]}")
                os.rename(staging, folder)
                found = _programs(folder)
    if found is None:
        pytest.fail(f"the native Codex binary was not installed with @openai/codex@{version}")
    wrapper, native = found
    if not _answers(native, version):
        pytest.fail(f"{native} --version does not answer codex-cli {version}")
    return RealCodex(version, wrapper, native)


@pytest.fixture(scope="session", params=RELEASES)
def real_codex(request) -> RealCodex:
    """Each release in turn, installed once (kept between runs)."""
    return install(request.param)


@pytest.fixture
def mock_server():
    with MockModelServer() as server:
        yield server
