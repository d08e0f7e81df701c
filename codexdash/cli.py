"""The command line: thin subcommands over the core. The dashboard is imported only to run it.

Exit status: 0 done, 1 refused or failed, 2 bad input. Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import re
import sys
import time

from codexdash import __version__, format as fmt
from codexdash.config_values import read_settings
from codexdash.errors import BadInput, CodexdashError, Refused

STYLE_ANSI = {
    "prompt": "\x1b[1m",
    "agent": "\x1b[36m",
    "command": "\x1b[33m",
    "ok": "\x1b[32m",
    "error": "\x1b[31m",
    "dim": "\x1b[2m",
    "notice": "\x1b[35m",
    "output": "",
}


# The states in colour on a terminal (none when piped or under NO_COLOR); the symbol and the
# word carry the state without it.
STATUS_ANSI = {
    "starting": "\x1b[33m",
    "running": "\x1b[1;32m",
    "stopping": "\x1b[33m",
    "completed": "\x1b[32m",
    "failed": "\x1b[1;31m",
    "interrupted": "\x1b[35m",
    "killed": "\x1b[1;31m",
    "lost": "\x1b[1;35m",
    "failed_to_start": "\x1b[1;31m",
}
# Codex's values for --sandbox (codexdash.starting.SANDBOX_MODES, not imported here: the parser is
# built on every call and the engine is slow to import; a test keeps the two the same).
SANDBOX_VALUES = ("read-only", "workspace-write", "danger-full-access")
START_EPILOG = f"""\
sandbox modes: {", ".join(SANDBOX_VALUES)} (default: Codex's own).

Arguments after `--` go to `codex exec` as they are:
  codexdash start --name ci-fix "fix the failing CI job" -- --config model_reasoning_effort=high
"""


def use_color(stream=None) -> bool:
    """Colour on a terminal; none when piped, under NO_COLOR or on a dumb terminal."""
    stream = stream or sys.stdout
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def paint(text: str, ansi: str | None, color: bool) -> str:
    return f"{ansi}{text}\x1b[0m" if color and ansi else text


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter, asking the terminal's width only when it writes help: argparse makes
    a formatter for each argument added (to check its metavar), and the width's module, shutil,
    brings zlib, bz2 and lzma with it, for a command that writes no help."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position, width=80 if width is None else width)
        if width is None:
            self._max_help_position_asked = max_help_position
            del self._width, self._max_help_position  # worked out by __getattr__, when first read

    def __getattr__(self, name: str):
        if name not in ("_width", "_max_help_position"):
            raise AttributeError(name)
        import shutil

        # As HelpFormatter works them out when it is given no width.
        self._width = shutil.get_terminal_size().columns - 2
        self._max_help_position = min(self._max_help_position_asked, max(self._width - 20, self._indent_increment * 2))
        return getattr(self, name)


class _RawDescriptionFormatter(_Formatter, argparse.RawDescriptionHelpFormatter):
    pass


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, formatter_class: type = _Formatter, **kwargs) -> None:
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        sys.stderr.write(f"codexdash: {message} (try: {self.prog} --help)\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="codexdash", description="Watch and control Codex CLI jobs. With no command: the dashboard.")
    p.add_argument("--version", action="version", version=f"codexdash {__version__}")
    p.add_argument("--db", help="job database (env CODEXDASH_DB)")
    p.add_argument("--codex-home", help="Codex home (env CODEX_HOME, default ~/.codex)")
    p.add_argument("--codex", help="Codex command, split like a shell (env CODEXDASH_CODEX)")
    p.add_argument("--host", metavar="NAME", help="run the command on that box, reached by ssh as NAME (local: this one)")
    p.add_argument("--protocol", type=int, help=argparse.SUPPRESS)  # set by the codexdash that drives this one
    # prog given: argparse would format the usage of the positional arguments before the command
    # (none), which asks the terminal's width, to find this name.
    sub = p.add_subparsers(dest="command", parser_class=_Parser, prog=p.prog)

    s = sub.add_parser("start", help="start a Codex job, detached", usage="%(prog)s [options] PROMPT [-- EXTRA ...]",
                       epilog=START_EPILOG, formatter_class=_RawDescriptionFormatter)
    s.add_argument("prompt", help="the prompt ('-' reads it from stdin)")
    s.add_argument("--cwd", default=None, help="working directory (default: here)")
    s.add_argument("--name", help="what to call the job in tables (default: a title from the prompt's first line)")
    s.add_argument("--model", help="model for Codex (default: Codex's own)")
    s.add_argument("--sandbox", metavar="MODE", help="Codex sandbox mode (the values are below)")
    s.add_argument("--worktree", action="store_true",
                   help="run the job in a new Git worktree that Codex makes (the cwd must be in a Git work tree)")
    s.add_argument("--json", action="store_true", help="print the new job as JSON (stable keys)")

    s = sub.add_parser("resume", help="a follow-up: continue a finished job's Codex session with a new prompt")
    s.add_argument("job")
    s.add_argument("prompt", help="the follow-up prompt ('-' reads it from stdin)")
    s.add_argument("--name", help="what to call the follow-up (default: a title from its prompt)")
    s.add_argument("--model", help="model for Codex (default: the job's)")
    s.add_argument("--sandbox", metavar="MODE", help=f"Codex sandbox mode: {', '.join(SANDBOX_VALUES)} (default: the job's)")
    s.add_argument("--json", action="store_true", help="print the new job as JSON")

    s = sub.add_parser("retry", help="run a job again: same prompt, cwd, model, sandbox and extra arguments")
    s.add_argument("job")
    s.add_argument("--json", action="store_true", help="print the new job as JSON")

    s = sub.add_parser("forget", help="remove finished jobs' records (Codex's session files stay)")
    s.add_argument("jobs", nargs="+", metavar="JOB")

    s = sub.add_parser("list", help="running and recent jobs")
    s.add_argument("--all", action="store_true", help="every job ever recorded")
    s.add_argument("--all-hosts", action="store_true", help="this box and every configured one (hosts)")
    s.add_argument("--no-external", action="store_true", help="leave out Codex sessions codexdash did not start")
    s.add_argument("--json", action="store_true", help="print the jobs as JSON (stable keys)")
    s.add_argument("--watch", action="store_true",
                   help="with --json: keep looking; a JSON line {jobs: [...]} first and whenever the jobs change, "
                        "{heartbeat: TIME} when nothing changed for a while; ends when stdin or stdout closes")
    s.add_argument("--interval", type=float, metavar="S", help="with --watch: seconds between looks (2)")
    s.add_argument("--heartbeat", type=float, metavar="S",
                   help="with --watch: a heartbeat after this many seconds without a line (5)")

    s = sub.add_parser("show", help="a job's record, identity checks and session file")
    s.add_argument("job")
    s.add_argument("--json", action="store_true", help="print the job as JSON, with its history and identity checks")

    s = sub.add_parser("logs", help="a job's Codex session, rendered")
    s.add_argument("target", metavar="JOB|SESSION_FILE")
    s.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    s.add_argument("--raw", action="store_true", help="the JSON lines as written (control characters made visible)")
    s.add_argument("--tail", "-n", type=int, default=None, metavar="N", help="only the last N events")
    s.add_argument("--json", action="store_true", help="each line as JSON {style, text}, then {end: {status}}")

    s = sub.add_parser("diff", help="what a job changed: its files' diffs (Git), else the edits its session recorded")
    s.add_argument("job")
    s.add_argument("--stat", action="store_true", help="only the files and their figures")
    s.add_argument("--json", action="store_true", help="print the changes as JSON (files, actions, diffs)")

    s = sub.add_parser("kill", help="verify and stop a job (graceful, then forceful)")
    s.add_argument("job")
    s.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    s.add_argument("--force", action="store_true", help="skip the graceful steps: SIGKILL at once")
    s.add_argument("--json", action="store_true", help="with --yes: the checks as run and the outcome, as JSON")

    s = sub.add_parser("hosts", help="every configured box: reachable, round trip, versions, jobs by state")
    s.add_argument("--json", action="store_true", help="print each box as JSON (reachable, round trip, versions, jobs by state)")

    s = sub.add_parser("version", help="versions of codexdash, its protocol and Codex, and this box's jobs by state")
    s.add_argument("--json", action="store_true", help="print the versions as JSON")

    sub.add_parser("doctor", help="check the Codex command, CODEX_HOME and the database")

    s = sub.add_parser("demo", help="the dashboard on a sandbox with a fake agent")
    s.add_argument("--keep", action="store_true", help="keep the sandbox directory on exit")
    return p


def _split_extra(argv: list[str]) -> tuple[list[str], list[str]]:
    """`start ... PROMPT -- EXTRA`: what follows `--` goes to Codex untouched."""
    if "start" in argv and "--" in argv[argv.index("start") :]:
        i = argv.index("--", argv.index("start"))
        return argv[:i], argv[i + 1 :]
    return argv, []


class Context:
    """Settings and the engine, made only for the commands that need them: every command checks
    its settings, but `logs FILE` uses none, and Settings is a dataclass, slow to import."""

    def __init__(self, values: dict[str, object], host: str | None = None) -> None:
        self._values = values  # config_values.read_settings: checked already
        self._settings = None
        self.host = host
        self._engine = None
        self._box = None

    @property
    def settings(self):
        """The settings (config.Settings)."""
        if self._settings is None:
            from codexdash.config import Settings

            self._settings = Settings(**self._values)
        return self._settings

    @property
    def remote(self) -> bool:
        """--host names another box: the command runs there."""
        return self.host not in (None, "local")

    @property
    def box(self):
        """The box the command runs on (boxes.Box): this one unless --host names another."""
        if self._box is None:
            from codexdash.boxes import open_box

            self._box = open_box(self.settings, self.host, lambda: self.engine)
        return self._box

    @property
    def engine(self):
        if self._engine is None:
            from codexdash.jobs import JobEngine
            from codexdash.store import open_store

            self._engine = JobEngine(self.settings, open_store(self.settings.db_path))
        return self._engine


def run() -> None:
    """The `codexdash` command (and `python -m codexdash`): main(), then the end of the process.

    A command that only read and printed, and says so (`_leaves_nothing_open`), ends the process
    at once, its output flushed: what the interpreter's exit would still do is free every object
    and module one by one (several milliseconds of a `list`), with nothing of the command's to
    close. Unless something else waits for that exit: a thread, an exit handler (coverage's), a
    tracer or a profiler (cProfile writes its figures once the program returns)."""
    code = main()
    if _nothing_open and _nothing_waits_for_the_exit():
        sys.stderr.flush()  # stdout is flushed by main()
        os._exit(code)
    sys.exit(code)


def _nothing_waits_for_the_exit() -> bool:
    import atexit
    import threading

    handlers = getattr(atexit, "_ncallbacks", None)  # CPython's count; where it is missing, assume some
    return (handlers is not None and handlers() == 0 and threading.active_count() == 1
            and sys.gettrace() is None and sys.getprofile() is None)


# Set by a command that opened nothing that needs closing at exit (no store, no files being
# written, no thread, no exit handler): `list` read from the store's file, `logs` of a file
# read once. run() ends such a process without the interpreter's teardown.
_nothing_open = False


def _leaves_nothing_open() -> None:
    global _nothing_open
    _nothing_open = True


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    finally:  # also after --help and --version, which exit from argparse
        try:
            sys.stdout.flush()  # here, not at exit, where a reader that went away is a traceback
        except BrokenPipeError:
            _stdout_to_devnull()


def _stdout_to_devnull() -> None:
    # The reader went away (`| head`): not an error of ours, and it ends quietly, as `cat` does.
    # What is still buffered goes to /dev/null, so the flush at exit cannot fail.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _main(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    argv, extra = _split_extra(argv)
    try:
        args = build_parser().parse_args(argv)
        args.extra = extra
        _check_text_arguments(args)
        if args.protocol is not None:
            from codexdash.protocol import accept

            accept(args.protocol)
        ctx = Context(read_settings(db=args.db, codex_home=args.codex_home, codex=args.codex), host=args.host)
        if args.command is None:
            return _dashboard(ctx)
        if ctx.remote:
            from codexdash.cli_boxes import on_box

            return on_box(args.command, COMMANDS[args.command])(args, ctx)
        if args.command in LOOKS:
            from codexdash.records import looking

            with looking():  # a read-only database is still listed, shown and followed
                return COMMANDS[args.command](args, ctx)
        return COMMANDS[args.command](args, ctx)
    except CodexdashError as exc:
        sys.stderr.write(f"codexdash: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _stdout_to_devnull()
        return 0
    except Exception as exc:
        if not _database_error(exc):
            raise
        # The store raises StoreError for what it foresees; anything else is still one line.
        sys.stderr.write(f"codexdash: database error: {exc}\n")
        return 1


def _database_error(exc: Exception) -> bool:
    """An error of SQLite or peewee (each asked only if it was loaded: sqlite3 is loaded with
    the store or a quick look, peewee only with the store; `logs FILE`, `--help` or `--version`
    need neither)."""
    sqlite3, peewee = sys.modules.get("sqlite3"), sys.modules.get("peewee")
    return (sqlite3 is not None and isinstance(exc, sqlite3.Error)) or \
        (peewee is not None and isinstance(exc, peewee.PeeweeException))


# Arguments that name a file codexdash only opens may be any bytes, as file names may be; every
# other one is stored, shown or handed to Codex, and must be text.
_ANY_BYTES = {"db", "target"}
_LABELS = {"prompt": "the prompt", "cwd": "the working directory", "extra": "an argument for Codex", "job": "the job id"}


def _check_text_arguments(args: argparse.Namespace) -> None:
    """Bytes in argv that are not UTF-8 reach Python as lone surrogates, which the store, JSON
    and Codex refuse later with a traceback: one line now, before anything is done."""
    for name, value in vars(args).items():
        if name in _ANY_BYTES:
            continue
        for text in value if isinstance(value, list) else [value]:
            if not isinstance(text, str) or text.isascii():
                continue  # ASCII is UTF-8 (and the check's module stays unloaded)
            from codexdash.render import undecodable

            if (shown := undecodable(text)) is not None:
                label = _LABELS.get(name, "--" + name.replace("_", "-"))
                raise BadInput(f"{label} {'' if name == 'prompt' else shown + ' '}is not valid UTF-8")


def _dashboard(ctx: Context) -> int:
    if ctx.remote:
        raise BadInput("--host takes a command (the dashboard runs here and shows every configured box)")
    from codexdash.ui.app import run_dashboard

    return run_dashboard(ctx.engine)


def _out(data) -> None:
    # Indented for people; compact when read by a program (it is also much faster to write).
    print(json.dumps(data, indent=2 if sys.stdout.isatty() else None, ensure_ascii=False))


def cmd_start(args, ctx: Context) -> int:
    from codexdash.starting import StartRequest

    ctx.engine.store.require_writable()
    prompt = args.prompt
    if prompt == "-":
        try:
            prompt = sys.stdin.buffer.read().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadInput(f"the prompt read from stdin is not valid UTF-8 (byte {exc.start})") from None
    request = StartRequest(prompt=prompt, cwd=args.cwd or os.getcwd(), model=args.model, sandbox=args.sandbox,
                           extra_args=args.extra, name=args.name, worktree=args.worktree)
    return _started(ctx.engine.start(request), args.json)


def _started(job, as_json: bool) -> int:
    if as_json:
        from codexdash.jobs import job_json

        _out(job_json(job.__data__))
    else:
        print(f"{job.id} {job.pid}")
    return 0


def cmd_resume(args, ctx: Context) -> int:
    engine = ctx.engine
    engine.store.require_writable()
    parent = engine.find(args.job)
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    return _started(engine.resume(parent, prompt, model=args.model, sandbox=args.sandbox, name=args.name), args.json)


def cmd_forget(args, ctx: Context) -> int:
    engine = ctx.engine
    engine.store.require_writable()
    jobs = [engine.find(ref) for ref in args.jobs]  # every reference checked before any removal
    for job in jobs:
        engine.forget(job)
        print(f"forgot {job.id}")
    return 0


def cmd_retry(args, ctx: Context) -> int:
    engine = ctx.engine
    engine.store.require_writable()
    return _started(engine.retry(engine.find(args.job)), args.json)


def cmd_list(args, ctx: Context) -> int:
    if args.watch:
        from codexdash.cli_boxes import list_watch

        return list_watch(args, ctx)
    if args.interval is not None or args.heartbeat is not None:
        raise BadInput(f"--{'interval' if args.interval is not None else 'heartbeat'} goes with --watch")
    if args.all_hosts:
        from codexdash.cli_boxes import list_all_hosts

        return list_all_hosts(args, ctx)
    rows = None
    if not ctx.remote:  # this box: read straight from the store unless the engine has work to do
        from codexdash.listing import quick_listing, quick_listing_text

        if args.json and not sys.stdout.isatty():  # compact JSON, written from the rows
            text = quick_listing_text(ctx.settings, all_history=args.all, external=not args.no_external)
            if text is not None:
                print(text)
                _leaves_nothing_open()
                return 0
        else:
            rows = quick_listing(ctx.settings, all_history=args.all, external=not args.no_external)
            if rows is not None:
                _leaves_nothing_open()  # its connection is closed: what follows only prints
    if rows is None:
        rows = ctx.box.jobs(all_history=args.all, external=not args.no_external)
    if args.json:
        _out(rows)
        return 0
    if not rows:
        print("no jobs" + ("" if args.all else " running or recent (--all for every job)"))
        return 0
    print_jobs(rows)
    return 0


def _epoch(iso: str | None) -> float | None:
    import datetime as dt

    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() if iso else None


def print_jobs(rows: list[dict], host_column: bool = False) -> None:
    """Jobs as a table, from their JSON (so the rows of any box print alike). Sessions
    codexdash did not start are named `~` and the end of their session id."""
    from codexdash.external import short_id
    from codexdash.render import sanitize
    from codexdash.records import JobStatus

    table = [("ID", *(("HOST",) if host_column else ()), "NAME", "STATUS", "PID", "TIME", "CPU", "MEM", "TOKENS", "CWD", "PROMPT")]
    now = time.time()
    for j in rows:
        created, ended = _epoch(j["created_at"]), _epoch(j["ended_at"])
        if j["status"] in JobStatus.LIVE or j["status"] == "running":
            when = fmt.duration(now - created)
        elif ended is not None and j["status"] != JobStatus.FAILED_TO_START:
            when = fmt.duration(ended - created)
        else:
            when = fmt.duration(now - created) + " ago"
        table.append((
            "~" + short_id(j["id"]) if j.get("external") else j["id"],
            *((sanitize(j.get("host") or "local"),) if host_column else ()),
            sanitize(fmt.one_line(j.get("name") or fmt.title(j["prompt"]), 24)),
            fmt.status_label(j["status"]),
            str(j["pid"] or "-"),
            when,
            f"{j['cpu_percent']:.0f}%" if j.get("cpu_percent") is not None else "-",
            fmt.size(j["rss_bytes"]) if j.get("rss_bytes") is not None else "-",
            fmt.tokens(j["tokens"]),
            sanitize(fmt.path_end(j["cwd"] or "-", 30)),
            sanitize(fmt.one_line(j["prompt"], 40)),
        ))
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    color = use_color()
    state = 3 if host_column else 2  # the STATUS column
    for n, r in enumerate(table):
        cells = [c.ljust(w) for c, w in zip(r, widths)]
        if color and n == 0:  # padded first: escapes take no room on screen
            cells = [paint(c, "\x1b[1m", color) for c in cells]
        elif color:
            cells[state] = paint(cells[state], STATUS_ANSI.get(r[state].split(" ", 1)[-1].replace(" ", "_")), color)
        print("  ".join(cells).rstrip())


def cmd_show(args, ctx: Context) -> int:
    data = ctx.box.show(args.job)
    if args.json:
        _out(data)
        return 0
    print_job(data)
    return 0


def print_job(data: dict) -> None:
    """A job as `show` prints it, from its JSON."""
    from codexdash.render import sanitize

    color = use_color()
    data = {**data, "model": data.get("model") or ("(not recorded)" if data.get("external") else "(Codex's default)")}
    for key in ("id", "name", "host", "status", "pid", "cwd", "worktree", "model", "created_at", "ended_at", "exit_code",
                "tokens", "session_id", "session_file", "parent_id", "retry_of", "detail", "error"):
        if data.get(key) is not None and not (key == "host" and data[key] == "local"):
            value = sanitize(str(data[key]))
            if key == "status":
                value = paint(fmt.status_label(data[key]), STATUS_ANSI.get(data[key]), color)
            print(f"{key:>13}: {value}")
    print(f"{'prompt':>13}: {sanitize(fmt.one_line(data['prompt'], 200))}")
    if data.get("argv"):
        print(f"{'command':>13}: {sanitize(shlex.join(data['argv']))[:400]}")
    if data.get("external"):
        print(f"{'':>13}  not started by codexdash: read-only")
        return
    if data.get("identity"):
        print("identity checks:")
        print_checks(data["identity"])
    print("history:")
    for e in data.get("history") or []:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["at"]))
        detail = e.get("detail") or {}
        if e["kind"] == "state":
            what = f"{e['from'] or ''} → {e['to']}"
        elif e["kind"] == "notify":
            what = f"notify ({detail.get('event')}): {detail.get('outcome')}"
        elif e["kind"] == "notify_sent":
            continue  # handed to the hook's runner: its `notify` line says how it went
        elif e["kind"] == "notify_due":
            what = f"notify ({detail.get('event')}): due, not handed to the hook yet"
        elif e["kind"] == "stalled":
            what = "stalled: its session file has not grown since " + time.strftime(
                "%H:%M:%S", time.localtime(detail.get("silent_since") or e["at"]))
        else:
            what = f"{e['kind']}: {detail.get('outcome')}"
        print(f"  {when}  {what}")


def print_checks(identity: dict) -> None:
    """Identity checks as run (`IdentityReport.as_dict()`), one line each."""
    from codexdash.render import sanitize

    if identity.get("cmdline"):
        print(f"  command: {sanitize(' '.join(identity['cmdline']))[:300]}")
    for c in identity["checks"]:
        print(f"  {'✔' if c['ok'] else '✖'} {c['name']}: {sanitize(c['detail'])}")


def _style(line, color: bool) -> str:
    if not color or not STYLE_ANSI.get(line.style):
        return line.text
    return f"{STYLE_ANSI[line.style]}{line.text}\x1b[0m"


def cmd_logs(args, ctx: Context) -> int:
    """A session as it is written, here or on another box: one follower reads (a LocalFollower
    here, the box's own there), this prints rendered lines (JSON lines with --json, which is what
    another codexdash reads), ending when the job does."""
    from codexdash.local_follow import FollowEnd, LocalFollower

    color = not args.json and sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    out = sys.stdout
    if not ctx.remote and os.path.isfile(os.path.expanduser(args.target)):
        # A session file here: read as it is, with no store to open (nor its ORM, nor the box
        # interface, to load).
        follower = LocalFollower(None, args.target, raw=args.raw, tail=args.tail, follow=args.follow)
        if not args.follow:
            _leaves_nothing_open()  # the file is read once, and closed, before the loop ends
    else:
        follower = ctx.box.follow(args.target, raw=args.raw, tail=args.tail, follow=args.follow)
    try:
        for item in follower:
            if isinstance(item, FollowEnd):
                if args.json:
                    out.write(json.dumps({"end": {"status": item.status}}) + "\n")
                break
            out.write((json.dumps({"style": item.style, "text": item.text}) if args.json else _style(item, color)) + "\n")
            if args.follow:
                out.flush()
    finally:
        follower.close()
    out.flush()
    return 0


# Characters JSON leaves as they are but a terminal may act on: DEL, C1 controls, bidi overrides,
# lone surrogates (which a surrogateescape stream would write as raw bytes).
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _inert_json(data) -> str:
    """JSON in which every character a terminal could act on is escaped (\\uXXXX)."""
    text = json.dumps(data, indent=2 if sys.stdout.isatty() else None, ensure_ascii=False)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def cmd_diff(args, ctx: Context) -> int:
    from codexdash.changes import job_changes

    engine = ctx.engine
    job = engine.find(args.job)
    engine.reconcile(job)
    changes = job_changes(engine, job)
    out = sys.stdout
    if args.json:
        out.write(_inert_json(changes.as_json(with_diff=not args.stat)) + "\n")
        out.flush()
        return 0
    color = out.isatty() and not os.environ.get("NO_COLOR")
    for line in changes.lines(stat=args.stat):
        out.write(_style(line, color) + "\n")
    out.flush()
    return 0


def cmd_kill(args, ctx: Context) -> int:
    from codexdash.kill import KillRefused, describe_plan, kill_job

    if args.json:
        from codexdash.cli_boxes import kill_json

        return kill_json(args, ctx)
    engine = ctx.engine
    job, session = ctx.engine.find_job_or_session(args.job)
    if session is not None:
        raise Refused(f"session {session.session_id} was not started by codexdash: no marker to verify; nothing was sent")
    engine.store.require_writable()

    def show_checks(report) -> None:
        print(f"job {job.id}  pid {job.pid}")
        print_checks(report.as_dict())

    def confirm(report, plan) -> bool:
        show_checks(report)
        print(f"  will send: {describe_plan(plan)}")
        if args.yes:
            return True
        if not sys.stdin.isatty():
            raise BadInput("not a terminal: pass --yes to kill without asking")
        answer = input(f"Kill job {job.id}? [y/N] ").strip().lower()
        return answer in ("y", "yes")

    try:
        result = kill_job(engine, job, force=args.force, confirm=confirm, progress=lambda msg: print(f"  {msg}"))
    except KillRefused as exc:
        if exc.report.checks and not exc.report.ok:
            show_checks(exc.report)  # why: each check with its result
        raise
    print(result.summary(job.status))
    return 0 if result.stopped else 1


def cmd_doctor(args, ctx: Context) -> int:
    from codexdash.boxes import codex_version

    s = ctx.settings
    problems = 0

    def line(ok: bool, text: str) -> None:
        nonlocal problems
        problems += 0 if ok else 1
        print(f"{'✔' if ok else '✖'} {text}")

    ok, command, said = codex_version(s.codex_command)
    line(ok, said if command is None else f"Codex command: {' '.join(command)} ({said})")
    home = s.codex_home
    if home.is_dir():
        from codexdash.session_files import iter_session_files

        line(True, f"CODEX_HOME: {home} ({len(iter_session_files(home))} session files)")
    else:
        line(False, f"CODEX_HOME: {home} does not exist (Codex needs it; run codex once or create it)")
    try:
        engine = ctx.engine
        from codexdash.store import Job

        mode = oct(os.stat(s.db_path).st_mode & 0o777)
        line(True, f"database: {s.db_path} ({Job.select().count()} jobs, mode {mode}{', read-only' if engine.store.readonly else ''})")
    except CodexdashError as exc:
        line(False, f"database: {exc}")
    line(hasattr(os, "pidfd_open"), "pidfd: signals reach only verified processes" if hasattr(os, "pidfd_open") else "pidfd: not available; PID reuse is guarded by start time only")
    if s.notify_command:
        import shutil

        hook = " ".join(s.notify_command)
        found = shutil.which(s.notify_command[0]) is not None
        line(found, f"notify hook: {hook}" if found else f"notify hook: {s.notify_command[0]} not found (set notify_command)")
    from codexdash.watcher import running_watcher

    pid = running_watcher(s.db_path)
    line(True, f"watcher: PID {pid}" if pid else "watcher: none running (each start launches one while jobs are live)")
    print("no problems found" if problems == 0 else f"{problems} problem(s) found")
    return 0 if problems == 0 else 1


def cmd_demo(args, ctx: Context) -> int:
    from codexdash.demo import run_demo

    return run_demo(keep=args.keep)


# Commands that only look: on a read-only database they work on an in-memory copy.
LOOKS = {"list", "show", "logs", "doctor"}


def cmd_hosts(args, ctx: Context) -> int:
    from codexdash.cli_boxes import hosts

    return hosts(args, ctx)


def cmd_version(args, ctx: Context) -> int:
    from codexdash.cli_boxes import version

    return version(args, ctx)


COMMANDS = {
    "start": cmd_start,
    "resume": cmd_resume,
    "retry": cmd_retry,
    "forget": cmd_forget,
    "list": cmd_list,
    "show": cmd_show,
    "logs": cmd_logs,
    "diff": cmd_diff,
    "kill": cmd_kill,
    "doctor": cmd_doctor,
    "demo": cmd_demo,
    "hosts": cmd_hosts,
    "version": cmd_version,
}
