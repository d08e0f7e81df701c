"""What `@dataclass` gives a class of fields (a repr naming them, equality field by field),
written out for the classes that `codexdash logs FILE` loads: importing `dataclasses` imports
`inspect` (and with it ast, dis and tokenize), several milliseconds of a command that takes
a few dozen. Everywhere else codexdash uses dataclasses."""

from __future__ import annotations


class Fields:
    """A base for a class whose instances are their `FIELDS`: the repr and equality of a
    dataclass of those fields (and, mutable as they are, no hash). Each subclass writes its own
    `__init__`."""

    __slots__ = ()
    FIELDS: tuple[str, ...] = ()

    def _values(self) -> tuple:
        return tuple(getattr(self, name) for name in self.FIELDS)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.FIELDS)
        return f"{type(self).__qualname__}({shown})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._values() == other._values()  # type: ignore[attr-defined]
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


class FrozenFields(Fields):
    """Fields that cannot be assigned once made (a frozen dataclass): hashable when its values
    are. `__init__` sets them through `object.__setattr__`."""

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def __hash__(self) -> int:
        return hash(self._values())
