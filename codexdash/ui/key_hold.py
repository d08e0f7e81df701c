"""Keys typed faster than a dialog opens go to the dialog, in order.

Textual routes a key to the focused widget when it reads it, but runs a non-priority binding
(`n`) only when the key comes back up from that widget; the keys read meanwhile went to the
table (`s` sorted it, `k` killed) or to a dialog with no focus yet (lost). So when a key that
opens a dialog is read, the keys after it are held, and routed once the dialog has its focus.
A mixin of the app.
"""

from __future__ import annotations

from textual import events
from textual.widgets import Input, TextArea

from codexdash.ui import keys

KEY_HOLD_LIMIT = 2.0  # held keys are let go after this at the latest, dialog or not


class KeyHold:
    _held_keys: list[events.Key] | None = None
    _hold_timer = None

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded:
            if self._held_keys is not None:
                self._held_keys.append(event)
                return
            if self._opens_dialog(event.key):
                self.hold_keys()
            await super().on_event(event)
            self.operator_acted()
            return
        if isinstance(event, events.MouseDown):
            self.operator_acted()
        await super().on_event(event)

    def operator_acted(self) -> None:
        """A key or a click: the operator is at the screen (the app takes it from here)."""

    def _opens_dialog(self, key: str) -> bool:
        """Whether this key, read now, will open a dialog (a text field takes keys as text)."""
        if self.screen is not self.screen_stack[0] or isinstance(self.focused, (Input, TextArea)):
            return False
        active = self.screen.active_bindings.get(key)
        return active is not None and active.enabled and active.binding.action in keys.DIALOG_ACTIONS

    def hold_keys(self) -> None:
        """Keys read from now on wait for `release_keys` (a dialog calls `let_keys_go` once it has
        its focus; an action that opens none after all calls it too)."""
        if self._held_keys is None:
            self._held_keys = []
            self._hold_timer = self.set_timer(KEY_HOLD_LIMIT, self.release_keys)

    def let_keys_go(self) -> None:
        self.call_later(self.release_keys)

    async def release_keys(self) -> None:
        held, self._held_keys = self._held_keys, None
        if self._hold_timer is not None:
            self._hold_timer.stop()
            self._hold_timer = None
        for event in held or []:
            await super().on_event(event)
