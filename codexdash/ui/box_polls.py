"""The other boxes' rows: each configured box is asked for its jobs in a thread of its own,
never by the refresh of this box's rows, and its last good answer is kept.

A box that does not answer (ssh cannot connect, the box's codexdash fails, or no answer within
its connect timeout) keeps its rows, greyed, with the reason and the time of the last good
look; it is asked again after 2 s, then 4, 8… up to 60 s, and at once when the operator acts on
it. A box that answers is asked again every `REMOTE_EVERY` seconds at most: each look is an
ssh round trip over the box's shared connection.

A mixin of the app (it uses `tell`, `_show_table`, `all_history`, `hide_external`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from textual.message import Message

from codexdash import format as fmt
from codexdash.boxes import LOCAL, Box
from codexdash.jobs import JobView
from codexdash.ui.job_actions import ENGINE_ERRORS

REMOTE_EVERY = 2.0  # seconds between two looks at a box that answers
BACKOFF_FIRST = 2.0  # after a failed look: this, doubling at each failure in a row…
BACKOFF_MAX = 60.0  # …up to this
DEFAULT_TIMEOUT = 10.0  # a look given up on (shown as unreachable) until the box's own is known


def backoff(failures: int) -> float:
    """Seconds to the next look after `failures` failed looks in a row."""
    return min(BACKOFF_FIRST * 2 ** max(failures - 1, 0), BACKOFF_MAX)


@dataclass
class BoxLook:
    """What the dashboard knows of one other box."""

    box: Box
    views: list[JobView] = field(default_factory=list)
    last_good: float | None = None  # wall time of the last answer
    error: str | None = None  # why the last look failed (None: it answered)
    failures: int = 0  # failed looks in a row
    asking_since: float | None = None  # monotonic time the look under way began
    timeout: float = DEFAULT_TIMEOUT  # the box's ssh connect timeout, once known
    wake: threading.Event = field(default_factory=threading.Event)
    stopped: bool = False

    @property
    def name(self) -> str:
        return self.box.name

    def problem(self, now: float | None = None) -> str | None:
        """Why the box's rows are greyed, or None: its last look failed, or the one under way
        has taken longer than the connect timeout."""
        if self.error:
            return self.error
        now = time.monotonic() if now is None else now
        if self.asking_since is not None and now - self.asking_since > self.timeout:
            return f"no answer for {now - self.asking_since:.0f} s"
        return None

    def since(self) -> str:
        """The time of the last good look, as the status line and the pane say it."""
        return "never answered" if self.last_good is None else "last seen " + time.strftime("%H:%M:%S", time.localtime(self.last_good))


@dataclass
class BoxAnswered(Message):
    """One look at a box is over: its rows, or why not."""

    name: str
    views: list[JobView] | None = None
    error: str | None = None


class BoxPolls:
    def start_box_polls(self, boxes: list[Box]) -> None:
        self.looks: dict[str, BoxLook] = {box.name: BoxLook(box) for box in boxes if box.name != LOCAL}
        for look in self.looks.values():
            # A thread of its own, not one of the app's workers: a look may wait on ssh for its
            # whole timeout, and workers share a small pool with the rest of the dashboard. A
            # daemon: quitting never waits for a box.
            threading.Thread(target=self._poll_box, args=(look,), name=f"codexdash-box-{look.name}", daemon=True).start()
        if self.looks:
            self.set_interval(1.0, self._watch_box_polls)

    def stop_box_polls(self) -> None:
        for look in getattr(self, "looks", {}).values():
            look.stopped = True
            look.wake.set()

    def look_again(self, name: str | None = None) -> None:
        """Asks the box (every box: None) at once, whatever its backoff."""
        for look in self.looks.values():
            if name is None or look.name == name:
                look.wake.set()

    def remote_views(self) -> list[JobView]:
        return [v for look in self.looks.values() for v in look.views]

    def _poll_box(self, look: BoxLook) -> None:
        box = look.box
        timeout = getattr(box, "connect_timeout", None)
        if timeout is not None:  # asks the operator's ssh configuration (`ssh -G`): not on the screen's thread
            try:
                look.timeout = float(timeout)
            except ENGINE_ERRORS:
                pass
        while not look.stopped:
            look.wake.clear()
            look.asking_since = time.monotonic()
            try:
                views = box.views(all_history=self.all_history, external=not self.hide_external)
                answer = BoxAnswered(look.name, views=views)
            except ENGINE_ERRORS as exc:
                answer = BoxAnswered(look.name, error=" ".join(str(exc).split()).removeprefix(f"{look.name}: "))
            except Exception as exc:  # an answer of a shape not foreseen: said, and the box asked again
                answer = BoxAnswered(look.name, error=f"an answer this codexdash cannot read: {exc!r}")
            look.asking_since = None
            if look.stopped:
                return
            self.post_message(answer)
            look.wake.wait(REMOTE_EVERY if answer.error is None else backoff(look.failures + 1))

    def on_box_answered(self, message: BoxAnswered) -> None:
        look = self.looks.get(message.name)
        if look is None or not self.table.is_attached:
            return  # an answer that comes while the dashboard closes: nothing left to draw on
        if message.error is None:
            if look.error is not None:
                self.tell(f"{look.name} answers again")
            look.views, look.error, look.failures = message.views or [], None, 0
            for what, v in self.attention.update(look.views, self._killing, first=look.last_good is None):
                self._announce(what, v)
            look.last_good = time.time()
        else:
            if look.error is None:
                self.tell(f"{look.name}: {message.error} (its rows are greyed; asked again in "
                          f"{fmt.duration(backoff(look.failures + 1))})", severity="warning")
            look.error = message.error
            look.failures += 1
        self._mark_stale(look)
        self._show_table()

    def _mark_stale(self, look: BoxLook) -> None:
        problem = look.problem()
        for v in look.views:
            v.stale = problem

    def _watch_box_polls(self) -> None:
        """A look that takes longer than the connect timeout greys the box's rows meanwhile."""
        changed = False
        for look in self.looks.values():
            problem = look.problem()
            if any(v.stale != problem for v in look.views):
                self._mark_stale(look)
                changed = True
        if changed:
            self._show_table()
        else:
            self._update_status()

    def box_facts(self) -> list[tuple[str, int, str | None, str]]:
        """(box, jobs shown, why it is greyed or None, when it last answered), this box first."""
        facts = [(LOCAL, len([v for v in self.shown_views() if v.host == LOCAL]), None, "")]
        shown = self.shown_views()
        for look in self.looks.values():
            facts.append((look.name, sum(1 for v in shown if v.host == look.name), look.problem(), look.since()))
        return facts
