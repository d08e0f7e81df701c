"""The other boxes' rows: each configured box is watched in a thread of its own, never by the
refresh of this box's rows, and its last good answer is kept.

A box is watched (`Box.watch`): one `list --json --watch` stays running there, over the box's
shared ssh connection, looking at its jobs every `REMOTE_EVERY` seconds and saying them only
when they changed, with a heartbeat when nothing did. So a quiet box costs one resident process
there and one ssh client here, not a process on each side per look. When the operator acts on
a box (a start, a kill), its watch is nudged: the box looks at once. Showing every job or the
external sessions again reopens the watches with those flags. A box whose codexdash is too old
to watch (ProtocolMismatch) is asked every `REMOTE_EVERY` seconds instead, as it was before
watches, and its watch tried again after `WATCH_RETRY` seconds.

A box that does not answer (ssh cannot connect, the box's codexdash fails, or nothing, not even
a heartbeat, within its connect timeout) keeps its rows, greyed, with the reason and the time
of the last good look; a watch that ended, or that stays silent for twice the connect timeout,
is opened again after 2 s, then 4, 8… up to 60 s, and at once when the operator acts on it.

A mixin of the app (it uses `tell`, `_show_table`, `all_history`, `hide_external`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from textual.message import Message

from codexdash import format as fmt
from codexdash.boxes import LOCAL, Box, ProtocolMismatch, Snapshot, Watcher
from codexdash.jobs import JobView
from codexdash.ui.job_actions import ENGINE_ERRORS
from codexdash.views import remote_views

REMOTE_EVERY = 2.0  # seconds between two looks at a box that answers (its watch's interval)
HEARTBEAT = 5.0  # a watch says it is there after this long without a change (at most half the timeout)
WATCH_RETRY = 600.0  # a box too old to watch is polled; its watch is tried again after this long
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
    watcher: Watcher | None = None  # the box's watch, while one is open
    poll_until: float = 0.0  # monotonic time until which the box is polled (too old to watch)

    @property
    def heartbeat(self) -> float:
        return max(min(HEARTBEAT, self.timeout / 2), 0.5)

    @property
    def name(self) -> str:
        return self.box.name

    def problem(self, now: float | None = None) -> str | None:
        """Why the box's rows are greyed, or None: its last look failed, or the one under way
        (the watch: since its last line) has taken longer than the connect timeout."""
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
            if (watcher := look.watcher) is not None:
                watcher.close()

    def look_again(self, name: str | None = None) -> None:
        """Asks the box (every box: None) at once, whatever its backoff: a watch open is
        nudged, one in backoff opened now."""
        for look in self.looks.values():
            if name is None or look.name == name:
                if (watcher := look.watcher) is not None:
                    watcher.nudge()
                look.wake.set()

    def rewatch_boxes(self) -> None:
        """The flags changed (every job, external sessions): every box's watch is opened again
        with them; a polled box is asked at once."""
        for look in self.looks.values():
            if (watcher := look.watcher) is not None:
                watcher.close()
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
            if time.monotonic() >= look.poll_until:
                answer = self._watch_box(look)
                if answer is None:
                    continue  # closed here (new flags), or too old to watch: at once again
            else:
                answer = self._ask_box(look)
            if look.stopped:
                return
            self.post_message(answer)
            look.wake.wait(REMOTE_EVERY if answer.error is None else backoff(look.failures + 1))

    def _answer_error(self, look: BoxLook, exc: Exception) -> BoxAnswered:
        if isinstance(exc, ENGINE_ERRORS):
            return BoxAnswered(look.name, error=" ".join(str(exc).split()).removeprefix(f"{look.name}: "))
        # An answer of a shape not foreseen: said, and the box asked again.
        return BoxAnswered(look.name, error=f"an answer this codexdash cannot read: {exc!r}")

    def _ask_box(self, look: BoxLook) -> BoxAnswered:
        """One look, for a box too old to watch: one `list --json` there."""
        look.asking_since = time.monotonic()
        try:
            return BoxAnswered(look.name, views=look.box.views(all_history=self.all_history, external=not self.hide_external))
        except Exception as exc:
            return self._answer_error(look, exc)
        finally:
            look.asking_since = None

    def _watch_box(self, look: BoxLook) -> BoxAnswered | None:
        """The box's watch, read until it ends: each snapshot posted as the box's rows. Returns
        why it ended (an error answer), or None when it was closed here or the box is too old
        to watch (then polled)."""
        flags = (self.all_history, not self.hide_external)
        look.asking_since = time.monotonic()
        watcher = None
        try:
            watcher = look.box.watch(all_history=flags[0], external=flags[1], interval=REMOTE_EVERY,
                                     heartbeat=look.heartbeat)
            look.watcher = watcher
            if look.stopped or flags != (self.all_history, not self.hide_external):
                return None  # changed while it opened
            for item in watcher:
                look.asking_since = time.monotonic()  # the box is there: silence counts from now
                if isinstance(item, Snapshot):
                    self.post_message(BoxAnswered(look.name, views=remote_views(item.jobs, look.name)))
                elif look.last_good is not None:
                    look.last_good = time.time()
            if look.stopped or flags != (self.all_history, not self.hide_external):
                return None
            return BoxAnswered(look.name, error="its watch ended")
        except ProtocolMismatch:
            look.poll_until = time.monotonic() + WATCH_RETRY
            return None
        except Exception as exc:
            return self._answer_error(look, exc)
        finally:
            look.watcher = None
            look.asking_since = None
            if watcher is not None:
                watcher.close()

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
