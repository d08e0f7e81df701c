"""Telling the operator through the terminal itself: the bell, and a desktop notification as
OSC 9 (iTerm2, kitty, WezTerm, Windows Terminal...) and OSC 777 (foot, WezTerm, rxvt, Ghostty...).

These travel over SSH like any output. Inside tmux they are wrapped in its passthrough
(`ESC P tmux; ... ESC \\`, which tmux 3.3+ forwards when `allow-passthrough` is on); the bell
needs no wrapping, tmux marks the window. Off under TERM=dumb and when configured off.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

ESC = "\x1b"
BEL = "\x07"
ST = ESC + "\\"
# Nothing from a job (its name) may end or extend the sequence: controls and ';' go.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f;]")
MAX_TEXT = 200


def _clean(text: str) -> str:
    return _UNSAFE.sub(" ", text)[:MAX_TEXT]


def tmux_passthrough(sequence: str) -> str:
    return f"{ESC}Ptmux;{sequence.replace(ESC, ESC + ESC)}{ST}"


def alert_sequences(title: str, body: str, in_tmux: bool) -> str:
    """The bell, then OSC 9 and OSC 777 carrying `title: body`."""
    title, body = _clean(title), _clean(body)
    notes = [f"{ESC}]9;{title}: {body}{BEL}", f"{ESC}]777;notify;{title};{body}{BEL}"]
    if in_tmux:
        notes = [tmux_passthrough(n) for n in notes]
    return BEL + "".join(notes)


class TerminalAlert:
    def __init__(self, write: Callable[[str], None], enabled: bool = True,
                 env: Mapping[str, str] | None = None) -> None:
        env = env or {}
        self.write = write
        self.enabled = enabled and env.get("TERM", "") != "dumb"
        self.in_tmux = bool(env.get("TMUX"))

    def __call__(self, title: str, body: str) -> None:
        if self.enabled:
            self.write(alert_sequences(title, body, self.in_tmux))
