"""The errors codexdash reports to its users: one clear line each, never a traceback."""


class CodexdashError(Exception):
    """An error shown to the user as one line. `exit_code` is what the CLI exits with."""

    exit_code = 1


class BadInput(CodexdashError):
    """The user asked for something that cannot be: unknown job, missing directory, empty prompt."""

    exit_code = 2


class Refused(CodexdashError):
    """An operation that was understood but not carried out, e.g. a kill the identity checks refuse."""

    exit_code = 1


class StoreError(CodexdashError):
    """The job database cannot be used as asked (corrupt, read-only, disk full)."""

    exit_code = 1
