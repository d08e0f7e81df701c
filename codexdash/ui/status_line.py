"""The status line: what needs the operator, the jobs per state with their tokens, and where
the dashboard looks, shortened by priority to fit the width (never cut mid-word).

Each part has forms from longest to shortest (an empty one: it may go). While the line is too
wide, the least important part that can still shrink takes its next form.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from rich.text import Text

from codexdash import format as fmt
from codexdash.render import sanitize
from codexdash.store import JobStatus
from codexdash.ui.styles import status_style


@dataclass
class Part:
    full: Text
    steps: list[tuple[Text, int]]  # shorter forms, each with the priority of the step to it

    def __init__(self, full: Text, *steps: tuple[Text, int]) -> None:
        self.full, self.steps = full, list(steps)


def fit(parts: list[Part], width: int) -> Text:
    """The parts on one line of `width` cells: while too wide, the step with the highest
    priority among the parts' next steps is taken (an empty form removes the part). Then each
    step is undone again, the most needed first, where the line still fits: a part dropped early
    comes back when a later, bigger step made room for it."""
    level = [0] * len(parts)
    taken: list[int] = []

    def form(n: int) -> Text:
        return parts[n].full if level[n] == 0 else parts[n].steps[level[n] - 1][0]

    def length() -> int:
        shown = [form(n) for n in range(len(parts)) if form(n).cell_len]
        return sum(t.cell_len for t in shown) + len(shown) - 1 if shown else 0

    while length() > width:
        can = [n for n, p in enumerate(parts) if level[n] < len(p.steps)]
        if not can:
            break
        n = max(can, key=lambda n: (parts[n].steps[level[n]][1], n))
        level[n] += 1
        taken.append(n)
    for n in reversed(taken):
        level[n] -= 1
        if length() > width:
            level[n] += 1
    out = Text()
    for n in range(len(parts)):
        if form(n).cell_len:
            if out.cell_len:
                out.append(" ")
            out.append_text(form(n))
    out.truncate(width)
    return out


def _t(text: str, style: str = "") -> Text:
    return Text(text, style=style)


@dataclass
class Facts:
    """What the status line tells, gathered by the app."""

    host: str
    title: str
    codex_home: str
    statuses: list[str]  # one per job shown
    tokens: dict[str, int]  # state -> tokens of its jobs
    attention: dict[str, int]  # failed / stalled / unseen -> count
    starting: int = 0
    all_history: bool = False
    hide_external: bool = False
    threads: bool = False
    query: str = ""
    mono: bool = False
    sort: str = ""  # the sort, when its column is not in the table to show it
    # With other boxes configured: (box, jobs shown, why it is greyed or None, when it last
    # answered) for this box and each other; and the one box shown, when filtered to one.
    boxes: tuple = ()
    box_filter: str | None = None


def build(f: Facts) -> list[Part]:
    bold_or = (lambda colour: "bold") if f.mono else (lambda colour: colour)
    gone = _t("")
    parts: list[Part] = []
    if f.title != "codexdash":
        parts.append(Part(_t(f" {sanitize(f.title)} ", "reverse"), (gone, 5)))
    parts.append(Part(_t(f" {sanitize(f.host)} ", "bold"), (gone, 4)))
    wanted = sum(f.attention.values())
    if wanted:
        kinds = [(what, n) for what, n in f.attention.items() if n]
        full = f"⚑ {kinds[0][1]} {kinds[0][0]}" if len(kinds) == 1 else f"⚑ {wanted}: " + " ".join(f"{n} {w}" for w, n in kinds)
        style = "bold reverse" if f.mono else "bold reverse red"
        parts.append(Part(_t(f" {full} ", style), (_t(f" ⚑ {wanted} ", style), 1)))
    if f.starting:
        style = bold_or("yellow")
        parts.append(Part(_t(f"starting {f.starting}…", style), (_t(f"◌{f.starting}…", style), 1)))
    parts.extend(_boxes(f))
    counts = Counter(f.statuses)
    for status in [*JobStatus.LIVE, *JobStatus.FINISHED]:
        if not counts.get(status):
            continue
        style = status_style(status, f.mono)
        label, n, tok = fmt.status_label(status), counts[status], f.tokens.get(status)
        short = (_t(f"{fmt.STATUS_SYMBOL.get(status, '')}{n}", style), 2)
        if tok:
            parts.append(Part(_t(f"{label} {n} ({fmt.tokens(tok)} tok)", style), (_t(f"{label} {n}", style), 7), short))
        else:
            parts.append(Part(_t(f"{label} {n}", style), short))
    total = sum(f.tokens.values())
    if total:
        parts.append(Part(_t(f"Σ {fmt.tokens(total)} tokens"), (_t(f"Σ{fmt.tokens(total)}"), 3)))
    if f.query:
        style = bold_or("yellow")
        parts.append(Part(_t(f"filter:{sanitize(f.query)}", style), (_t("filter", style), 2)))
    if f.sort:
        parts.append(Part(_t(f"sort: {f.sort}", "dim"), (gone, 6)))
    view = " · ".join(["all history" if f.all_history else "recent"]
                      + ["external hidden"] * f.hide_external + ["threads"] * f.threads)
    parts.append(Part(_t(view, "dim"), (gone, 8)))
    parts.append(Part(_t(f"CODEX_HOME {sanitize(f.codex_home)}", "dim"), (gone, 9)))
    return parts


def _boxes(f: Facts) -> list[Part]:
    """Jobs per box (`local 2 box1 3`); a box that does not answer says why and since when."""
    gone = _t("")
    parts: list[Part] = []
    if len(f.boxes) < 2:
        return parts
    if f.box_filter is not None:
        style = "bold" if f.mono else "bold yellow"
        parts.append(Part(_t(f"only {sanitize(f.box_filter)}:", style), (_t(f"{sanitize(f.box_filter)}:", style), 2)))
    for name, n, problem, since in f.boxes:
        name = sanitize(name)
        if problem is None:
            parts.append(Part(_t(f"{name} {n}", "dim" if f.box_filter not in (None, name) else ""), (gone, 6)))
        else:
            style = "bold reverse" if f.mono else "bold red"
            # The reason is the first thing to go (the toast and the pane tell it too); the time
            # of the last good look stays as long as it can.
            parts.append(Part(_t(f"{name} ✖ {sanitize(problem)} · {since}", style), (_t(f"{name} ✖ {since}", style), 5),
                              (_t(f"{name} ✖ {since.removeprefix('last seen ')}", style), 3), (_t(f"{name} ✖", style), 2)))
    return parts


def status_text(f: Facts, width: int) -> Text:
    return fit(build(f), width)
