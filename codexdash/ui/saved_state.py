"""What the dashboard remembers between runs: the columns shown and their widths, the sort,
whether external sessions are hidden, and which finished jobs the operator has not looked at.

One small JSON file in the user's state directory, owner-only, written whole (a temporary
file renamed over it). A file that is missing, unreadable or malformed is ignored, value by
value: the dashboard starts with its defaults, never crashes on it.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from codexdash.config import APP_NAME
from codexdash.ui.columns import BY_KEY, COLUMNS, DEFAULT_SORT

MAX_WIDTH = 200
MAX_UNSEEN = 500


def default_path() -> Path:
    return Path(platformdirs.user_state_dir(APP_NAME)) / "dashboard.json"


@dataclass
class SavedState:
    columns: list[str] = field(default_factory=lambda: [c.key for c in COLUMNS if c.shown])
    widths: dict[str, int] = field(default_factory=dict)
    sort: tuple[str, bool] = DEFAULT_SORT  # column key, descending
    hide_external: bool = False
    threads: bool = False  # a job's follow-ups shown right under it
    unseen: list[str] = field(default_factory=list)  # finished jobs not looked at yet
    closed_at: float | None = None  # when the last dashboard closed: jobs ending after are unseen
    host_offered: bool = False  # the Host column was added once other boxes were configured

    def offer_host_column(self) -> None:
        """With other boxes configured, the Host column is shown (after the state), once: an
        operator who hides it then keeps it hidden."""
        if not self.host_offered and "host" not in self.columns:
            at = self.columns.index("state") + 1 if "state" in self.columns else 0
            self.columns.insert(at, "host")
        self.host_offered = True

    def as_json(self) -> dict:
        return {"columns": self.columns, "widths": self.widths, "sort": list(self.sort),
                "hide_external": self.hide_external, "threads": self.threads, "unseen": self.unseen[-MAX_UNSEEN:],
                "closed_at": self.closed_at, "host_offered": self.host_offered}


def parse(data: object) -> SavedState:
    """A state from JSON, keeping each value that makes sense and the default for the rest."""
    state = SavedState()
    if not isinstance(data, dict):
        return state
    cols = data.get("columns")
    if isinstance(cols, list):
        keys = [k for k in cols if isinstance(k, str) and k in BY_KEY]
        state.columns = list(dict.fromkeys(keys))
    widths = data.get("widths")
    if isinstance(widths, dict):
        state.widths = {k: v for k, v in widths.items()
                        if k in BY_KEY and isinstance(v, int) and not isinstance(v, bool)
                        and BY_KEY[k].min_width <= v <= MAX_WIDTH}
    sort = data.get("sort")
    if (isinstance(sort, list) and len(sort) == 2 and sort[0] in BY_KEY and BY_KEY[sort[0]].sort is not None
            and isinstance(sort[1], bool)):
        state.sort = (sort[0], sort[1])
    for flag in ("hide_external", "threads"):
        if isinstance(data.get(flag), bool):
            setattr(state, flag, data[flag])
    unseen = data.get("unseen")
    if isinstance(unseen, list):
        state.unseen = [j for j in unseen if isinstance(j, str) and len(j) <= 64][-MAX_UNSEEN:]
    if isinstance(data.get("host_offered"), bool):
        state.host_offered = data["host_offered"]
    closed = data.get("closed_at")
    if isinstance(closed, (int, float)) and not isinstance(closed, bool) and closed > 0:
        state.closed_at = float(closed)
    return state


def load(path: Path) -> SavedState:
    try:
        with open(path, "rb") as fh:
            text = fh.read(1_000_000)
        return parse(json.loads(text))
    except (OSError, ValueError, RecursionError):  # missing, unreadable, not JSON or UTF-8, nested too deep
        return SavedState()


def save(path: Path, state: SavedState) -> None:
    """Writes the state owner-only; an error is raised for the caller to tell (or ignore)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".dashboard-", suffix=".json", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(state.as_json(), fh)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
