"""The session of a job on another box, as the pane shows it: that box's codexdash follows the
file (`box.follow`: `logs --follow --json` over ssh) and sends rendered lines, made inert
again here; the pane appends them as they come. The lines of one burst go to the screen in one
message. A follow that ends says why in the pane's header: the session is over, or the
connection to the box was lost (then it is opened again once the box answers).

A mixin of `SessionPane` (it uses its `log_view`, `items`, `_note`, `_update_header`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from rich.text import Text
from textual import work
from textual.message import Message

from codexdash.boxes import FollowEnd
from codexdash.ui.job_actions import ENGINE_ERRORS
from codexdash.ui.session_items import styled

TAIL = 1000  # events read back when a remote session is opened
RETRY_AFTER = 5.0  # seconds before a follow lost with its box is opened again (once the box answers)


@dataclass
class RemoteLines(Message):
    """Lines of a followed remote session arrived (taken from the batch by the handler)."""

    key: str


class RemoteSession:
    def _remote_init(self) -> None:
        self._follower = None
        self._batch: list = []  # rendered lines and a last FollowEnd or error, not yet shown
        self._batch_lock = threading.Lock()
        self._remote_texts: list[Text] = []
        self.retry_at: float | None = None  # a lost follow: when to open it again

    def _open_remote(self, box, job_id: str, key: str) -> None:
        self._remote_texts = []
        self.retry_at = None
        with self._batch_lock:
            self._batch = []
        self._follow_remote(box, job_id, key, self.raw)

    def _close_remote(self) -> None:
        follower, self._follower = self._follower, None
        if follower is not None:
            follower.close()

    @work(thread=True, exclusive=True, group="session")
    def _follow_remote(self, box, job_id: str, key: str, raw: bool) -> None:
        try:
            follower = box.follow(job_id, raw=raw, tail=TAIL, follow=True)
            self._follower = follower
            if self.path != key:  # another job was shown meanwhile
                follower.close()
                return
            for item in follower:
                self._add(key, item)
                if isinstance(item, FollowEnd):
                    return
        except (*ENGINE_ERRORS, ValueError) as exc:
            self._add(key, exc)

    def _add(self, key: str, item) -> None:
        with self._batch_lock:
            first = not self._batch
            self._batch.append(item)
        if first:
            self.post_message(RemoteLines(key))

    def on_remote_lines(self, message: RemoteLines) -> None:
        message.stop()
        with self._batch_lock:
            batch, self._batch = self._batch, []
        if message.key != self.path:
            return  # from a job no longer shown
        texts = []
        for item in batch:
            if isinstance(item, FollowEnd):
                self._note = f"the session is over ({item.status})" if item.status else "the session is over"
            elif isinstance(item, Exception):
                self._note = " ".join(str(item).split())
                self.retry_at = time.monotonic() + RETRY_AFTER
            else:
                texts.append(styled(item))
        self._remote_texts.extend(texts)
        if texts:
            self.log_view.append(texts)
        self._update_header()
