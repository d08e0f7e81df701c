"""The remote protocol: what one codexdash asks of another over SSH.

It is the CLI's JSON (`list --json`, `show --json`, `start --json`, `kill --yes --json`,
`logs --json`, `version --json`, and since protocol 2 `list --json --watch`), versioned as a
whole. The operator's codexdash puts `--protocol=N` before every command it runs on a box, N
being the oldest protocol that has the command as it is asked (`needs`): a codexdash that
cannot speak N refuses in one line starting with MISMATCH, and one too old to know the option
refuses it as an unknown argument. Either way the operator reads which side to upgrade; and a
command that came with a later protocol (the watch) is refused by an older box while every
other command still reaches it, so the operator can fall back (the dashboard polls a box that
cannot watch).

Raise PROTOCOL when a command's JSON changes in a way an older reader would misread (a key
removed or its meaning changed), or a command is added that the operator may ask for (name
the protocol that brought it, as WATCH); adding keys does not need it.
"""

from __future__ import annotations

from codexdash import __version__
from codexdash.errors import BadInput

PROTOCOL = 2
OLDEST = 1  # the oldest protocol this codexdash still speaks
BASE = 1  # the protocol of every command but those a later one brought
WATCH = 2  # `list --json --watch`: the jobs as JSON lines, a snapshot when they change
MISMATCH = "protocol mismatch"


def accept(requested: int) -> None:
    """Refuses, in one line, a protocol this codexdash does not speak."""
    if not OLDEST <= requested <= PROTOCOL:
        side = "upgrade codexdash on this box" if requested > PROTOCOL else "upgrade the codexdash that asked"
        raise BadInput(
            f"{MISMATCH}: asked for protocol {requested}; codexdash {__version__} here speaks "
            f"{OLDEST if OLDEST == PROTOCOL else f'{OLDEST} to {PROTOCOL}'} ({side})"
        )
