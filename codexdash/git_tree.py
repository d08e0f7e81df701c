"""Git for a job's changes: the work tree a directory is in, a snapshot of its state when a job
starts (a tree of its tracked and untracked, not ignored, files, written from a scratch copy of
the index so the user's index is never touched), and git run so that nothing configured runs on
the agent's files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

GIT_TIMEOUT = 30.0
SNAPSHOT_TIMEOUT = 5.0
# Untracked files are part of the start snapshot only while they add up to less than this.
SNAPSHOT_UNTRACKED_BYTES = 64 << 20
_EMPTY_TREE_SHA1 = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"



def _git_env(index: str | None = None) -> dict[str, str]:
    # Nothing inherited may point git elsewhere (GIT_DIR, GIT_INDEX_FILE, ...).
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_OPTIONAL_LOCKS="0", GIT_TERMINAL_PROMPT="0", LC_ALL="C", GIT_PAGER="cat")
    if index is not None:
        env["GIT_INDEX_FILE"] = index
    return env


# The files are the agent's: no configured program runs on them for a diff (external diff, text
# conversion, file-system monitor), and a file name is never read as a pathspec pattern.
_GIT = ("git", "--no-pager", "--literal-pathspecs", "-c", "core.fsmonitor=false", "-c", "core.quotepath=on",
        "-c", "color.ui=never", "-c", "diff.noprefix=false", "-c", "diff.mnemonicprefix=false", "-c", "diff.relative=false",
        "-c", "core.safecrlf=false", "-c", "advice.addIgnoredFile=false")
DIFF_OPTS = ("--no-ext-diff", "--no-textconv", "--no-color", "--no-renames")


def git(cwd: str, *args: str, timeout: float = GIT_TIMEOUT, ok: tuple[int, ...] = (0,),
         index: str | None = None) -> bytes | None:
    try:
        done = subprocess.run([*_GIT, *args], cwd=cwd, env=_git_env(index), stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode in ok else None


def _has_git_dir(path: str) -> bool:
    """Cheap: a `.git` in the directory or above (no subprocess where there is none)."""
    p = Path(path)
    for d in (p, *p.parents):
        if (d / ".git").exists():
            return True
    return False


def work_tree_root(path: str) -> str | None:
    """The top of the Git work tree holding `path`, or None."""
    if not path or not os.path.isdir(path) or not _has_git_dir(path):
        return None
    out = git(path, "rev-parse", "--show-toplevel")
    if not out:
        return None
    return out.decode("utf-8", "surrogateescape").rstrip("\n") or None


def head_commit(root: str) -> str | None:
    out = git(root, "rev-parse", "--verify", "-q", "HEAD^{commit}")
    return out.decode().strip() if out else None


class ScratchIndex:
    """A copy of the work tree's index in a temporary file: files are staged there, never in
    the user's index, so nothing the user sees in `git status` changes."""

    def __init__(self, root: str, timeout: float = GIT_TIMEOUT) -> None:
        self.root, self.timeout = root, timeout
        fd, self.path = tempfile.mkstemp(prefix="codexdash-index-")
        os.close(fd)
        out = git(root, "rev-parse", "--git-path", "index", timeout=timeout)
        real = os.path.join(root, out.decode("utf-8", "surrogateescape").strip()) if out else None
        try:
            if real is None:
                raise FileNotFoundError
            # Its stat data spares hashing unchanged files again. Its time is kept too: Git reads
            # a file changed in the same second as the index was written as "racily clean" and
            # compares contents; a copy dated now would make such a same-size edit look unchanged.
            shutil.copy2(real, self.path)
        except OSError:
            os.unlink(self.path)  # no index yet: git starts an empty one

    def git(self, *args: str, ok: tuple[int, ...] = (0,)) -> bytes | None:
        return git(self.root, *args, timeout=self.timeout, ok=ok, index=self.path)

    def add(self, rels: list[str]) -> None:
        """Stages the files as they are now (removals too), ignored ones included."""
        if not rels:
            return
        if self.git("add", "-A", "-f", "--", *rels) is None:
            for rel in rels:  # one bad path (beyond a symlink, in a submodule) spoils only itself
                self.git("add", "-A", "-f", "--", rel)

    def close(self) -> None:
        for path in (self.path, self.path + ".lock"):
            try:
                os.unlink(path)
            except OSError:
                pass

    def __enter__(self) -> ScratchIndex:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


def start_snapshot(cwd: str, include_changes: bool = True) -> str | None:
    """What the work tree holds now, as a Git tree, so that a job's diff can later be taken
    against the state before it ran: tracked files as they are (changes included) and untracked
    ones that are not ignored, staged in a scratch index (no file, ref or index of the user's
    changes). With `include_changes` False, or when that cannot be done in time: HEAD. None
    outside Git or in a repository without a commit."""
    root = work_tree_root(cwd)
    if root is None:
        return None
    if include_changes:
        with ScratchIndex(root, timeout=SNAPSHOT_TIMEOUT) as index:
            # Git keeps what it stages (unreferenced, until `git gc` prunes it): untracked files
            # are left out when they are big, and are then shown whole if the job edits them.
            untracked = listed_paths(index.git("ls-files", "-z", "--others", "--exclude-standard"))
            scope = "-A" if _total_size(root, untracked, SNAPSHOT_UNTRACKED_BYTES) <= SNAPSHOT_UNTRACKED_BYTES else "-u"
            if index.git("add", scope, "--", ".") is not None:
                out = index.git("write-tree")
                if out and out.strip():
                    return out.decode().strip()
        return None  # too slow or failed: the diff says it compares with the last commit
    out = git(root, "rev-parse", "--verify", "-q", "HEAD^{commit}", timeout=SNAPSHOT_TIMEOUT)
    return out.decode().strip() if out else None


def _total_size(root: str, rels: Iterable[str], stop_above: int) -> int:
    total = 0
    for rel in rels:
        try:
            total += os.lstat(os.path.join(root, rel)).st_size
        except OSError:
            continue
        if total > stop_above:
            break
    return total


def has_object(root: str, rev: str) -> bool:
    return git(root, "cat-file", "-e", f"{rev}^{{tree}}") is not None


def listed_paths(out: bytes | None) -> set[str]:
    if not out:
        return set()
    return {p.decode("utf-8", "surrogateescape") for p in out.split(b"\0") if p}


def empty_tree(root: str) -> str:
    out = git(root, "hash-object", "-t", "tree", os.devnull)
    return out.decode().strip() if out else _EMPTY_TREE_SHA1
