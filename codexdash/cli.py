"""The command line: thin subcommands over the core. The dashboard is imported only to run it.

Exit status: 0 done, 1 refused or failed, 2 bad input. Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import peewee

from codexdash import __version__, format as fmt
from codexdash.config import Settings, load_settings, split_command
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
# Codex's values for --sandbox (codexdash.jobs.SANDBOX_MODES, not imported here: the parser is
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


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        sys.stderr.write(f"codexdash: {message} (try: {self.prog} --help)\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="codexdash", description="Watch and control Codex CLI jobs. With no command: the dashboard.")
    p.add_argument("--version", action="version", version=f"codexdash {__version__}")
    p.add_argument("--db", help="job database (env CODEXDASH_DB)")
    p.add_argument("--codex-home", help="Codex home (env CODEX_HOME, default ~/.codex)")
    p.add_argument("--codex", help="Codex command, split like a shell (env CODEXDASH_CODEX)")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    s = sub.add_parser("start", help="start a Codex job, detached", usage="%(prog)s [options] PROMPT [-- EXTRA ...]",
                       epilog=START_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("prompt", help="the prompt ('-' reads it from stdin)")
    s.add_argument("--cwd", default=None, help="working directory (default: here)")
    s.add_argument("--name", help="what to call the job in tables (default: a title from the prompt's first line)")
    s.add_argument("--model", help="model for Codex (default: Codex's own)")
    s.add_argument("--sandbox", metavar="MODE", help="Codex sandbox mode (the values are below)")
    s.add_argument("--json", action="store_true", help="print the new job as JSON (stable keys)")

    s = sub.add_parser("resume", help="a follow-up: continue a finished job's Codex session with a new prompt")
    s.add_argument("job")
    s.add_argument("prompt", help="the follow-up prompt ('-' reads it from stdin)")
    s.add_argument("--model", help="model for Codex (default: the job's)")
    s.add_argument("--sandbox", metavar="MODE", help=f"Codex sandbox mode: {', '.join(SANDBOX_VALUES)} (default: the job's)")
    s.add_argument("--json", action="store_true", help="print the new job as JSON")

    s = sub.add_parser("retry", help="run a job again: same prompt, cwd, model, sandbox and extra arguments")
    s.add_argument("job")
    s.add_argument("--json", action="store_true", help="print the new job as JSON")

    s = sub.add_parser("list", help="running and recent jobs")
    s.add_argument("--all", action="store_true", help="every job ever recorded")
    s.add_argument("--no-external", action="store_true", help="leave out Codex sessions codexdash did not start")
    s.add_argument("--json", action="store_true", help="print the jobs as JSON (stable keys)")

    s = sub.add_parser("show", help="a job's record, identity checks and session file")
    s.add_argument("job")
    s.add_argument("--json", action="store_true", help="print the job as JSON, with its history and identity checks")

    s = sub.add_parser("logs", help="a job's Codex session, rendered")
    s.add_argument("target", metavar="JOB|SESSION_FILE")
    s.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    s.add_argument("--raw", action="store_true", help="the JSON lines as written (control characters made visible)")
    s.add_argument("--tail", "-n", type=int, default=None, metavar="N", help="only the last N events")

    s = sub.add_parser("kill", help="verify and stop a job (graceful, then forceful)")
    s.add_argument("job")
    s.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    s.add_argument("--force", action="store_true", help="skip the graceful steps: SIGKILL at once")

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
    """Settings and the engine, opened only by the commands that need them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine = None

    @property
    def engine(self):
        if self._engine is None:
            from codexdash.jobs import JobEngine
            from codexdash.store import open_store

            self._engine = JobEngine(self.settings, open_store(self.settings.db_path))
        return self._engine


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
        settings = load_settings().with_overrides(
            db_path=Path(args.db).expanduser() if args.db else None,
            codex_home=Path(args.codex_home).expanduser() if args.codex_home else None,
        )
        if args.codex:
            settings = settings.with_overrides(codex_command=split_command(args.codex, "--codex"))
        ctx = Context(settings)
        if args.command is None:
            return _dashboard(ctx)
        return COMMANDS[args.command](args, ctx)
    except CodexdashError as exc:
        sys.stderr.write(f"codexdash: {exc}\n")
        return exc.exit_code
    except (peewee.PeeweeException, sqlite3.Error) as exc:
        # The store raises StoreError for what it foresees; anything else is still one line.
        sys.stderr.write(f"codexdash: database error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _stdout_to_devnull()
        return 0


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
            if isinstance(text, str) and (shown := _undecodable(text)) is not None:
                label = _LABELS.get(name, "--" + name.replace("_", "-"))
                raise BadInput(f"{label} {'' if name == 'prompt' else shown + ' '}is not valid UTF-8")


def _undecodable(text: str) -> str | None:
    """None for text that is valid UTF-8; else the text with its undecodable bytes as \\xNN."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _dashboard(ctx: Context) -> int:
    from codexdash.ui.app import run_dashboard

    return run_dashboard(ctx.engine)


def _out(data) -> None:
    # Indented for people; compact when read by a program (it is also much faster to write).
    print(json.dumps(data, indent=2 if sys.stdout.isatty() else None, ensure_ascii=False))


def cmd_start(args, ctx: Context) -> int:
    from codexdash.jobs import StartRequest

    prompt = args.prompt
    if prompt == "-":
        try:
            prompt = sys.stdin.buffer.read().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadInput(f"the prompt read from stdin is not valid UTF-8 (byte {exc.start})") from None
    request = StartRequest(prompt=prompt, cwd=args.cwd or os.getcwd(), model=args.model, sandbox=args.sandbox,
                           extra_args=args.extra, name=args.name)
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
    parent = _find_job(ctx, args.job)
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    return _started(engine.resume(parent, prompt, model=args.model, sandbox=args.sandbox), args.json)


def cmd_retry(args, ctx: Context) -> int:
    engine = ctx.engine
    return _started(engine.retry(_find_job(ctx, args.job)), args.json)


def cmd_list(args, ctx: Context) -> int:
    from codexdash.external import short_id
    from codexdash.render import sanitize

    if args.json:
        _out(ctx.engine.listing(all_history=args.all, external=not args.no_external))
        return 0
    views = ctx.engine.refresh(all_history=args.all)
    externals = [] if args.no_external else ctx.engine.external_sessions(all_history=args.all)
    if not views and not externals:
        print("no jobs" + ("" if args.all else " running or recent (--all for every job)"))
        return 0
    header = ("ID", "NAME", "STATUS", "PID", "TIME", "CPU", "MEM", "TOKENS", "CWD", "PROMPT")
    dated = []
    now = time.time()
    for e in externals:  # read-only: no marker, so codexdash never signals them
        elapsed = (e.ended_at or now) - e.created_at
        dated.append((e.created_at, (
            "~" + short_id(e.session_id), sanitize(fmt.title(e.prompt, 24)), fmt.status_label(e.status), str(e.pid or "-"), fmt.duration(elapsed),
            "-", "-", fmt.tokens(e.tokens), sanitize(fmt.path_end(e.cwd or "-", 30)),
            sanitize(fmt.one_line(e.prompt, 40)),
        )))
    for v in views:
        j = v.job
        dated.append((j.created_at, (
            j.id,
            sanitize(fmt.one_line(j.name or fmt.title(j.prompt), 24)),
            fmt.status_label(j.status),
            str(j.pid or "-"),
            fmt.duration(v.elapsed) if v.elapsed is not None else fmt.duration(now - j.created_at) + " ago",
            f"{v.stats.cpu_percent:.0f}%" if v.stats else "-",
            fmt.size(v.stats.rss_bytes) if v.stats else "-",
            fmt.tokens(v.total_tokens),
            sanitize(fmt.path_end(j.cwd, 30)),
            sanitize(fmt.one_line(j.prompt, 40)),
        )))
    rows = [header] + [row for _at, row in sorted(dated, key=lambda d: d[0], reverse=True)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    color = use_color()
    for n, r in enumerate(rows):
        cells = [c.ljust(w) for c, w in zip(r, widths)]
        if color and n == 0:  # padded first: escapes take no room on screen
            cells = [paint(c, "\x1b[1m", color) for c in cells]
        elif color:
            cells[2] = paint(cells[2], STATUS_ANSI.get(r[2].split(" ", 1)[-1].replace(" ", "_")), color)
        print("  ".join(cells).rstrip())
    return 0


MAX_CANDIDATES = 10


def _find_job(ctx: Context, ref: str):
    """The job whose id begins with `ref`; when several do, the error lists them."""
    try:
        return ctx.engine.find(ref)
    except BadInput:
        from codexdash.render import sanitize
        from codexdash.store import Job

        ref = ref.strip()
        found = list(Job.select().where(Job.id.startswith(ref)).order_by(Job.created_at.desc()).limit(MAX_CANDIDATES + 1)) if ref else []
        if len(found) < 2:
            raise
        lines = [f"job {ref!r} is ambiguous: {'more than ' if len(found) > MAX_CANDIDATES else ''}"
                 f"{min(len(found), MAX_CANDIDATES)} jobs begin with it; give more of its id:"]
        for job in found[:MAX_CANDIDATES]:
            name = sanitize(fmt.one_line(job.name or fmt.title(job.prompt), 40))
            lines.append(f"  {job.id}  {fmt.status_label(job.status):<17} {name}  ({sanitize(fmt.path_end(job.cwd, 30))})")
        raise BadInput("\n".join(lines)) from None


def _job_or_session(ctx: Context, ref: str):
    """(job, None) for a job of codexdash's; (None, session) for a Codex session it did not
    start, named by the start or end of its id (tables show `~` and its end)."""
    try:
        return _find_job(ctx, ref), None
    except BadInput:
        session = ctx.engine.find_external(ref.lstrip("~"))
        if session is None:
            raise
        return None, session


def cmd_show(args, ctx: Context) -> int:
    from codexdash.identity import verify
    from codexdash.jobs import iso_time
    from codexdash.render import sanitize
    from codexdash.store import JobEvent

    engine = ctx.engine
    job, session = _job_or_session(ctx, args.job)
    if session is not None:
        data = session.as_json(iso_time)
        if args.json:
            _out(data)
            return 0
        data["model"] = data["model"] or "(not recorded)"
        for key in ("id", "status", "pid", "cwd", "model", "created_at", "ended_at", "tokens", "session_file", "error"):
            if data.get(key) is not None:
                value = sanitize(str(data[key]))
                print(f"{key:>13}: {paint(value, STATUS_ANSI.get(value), use_color()) if key == 'status' else value}")
        print(f"{'prompt':>13}: {sanitize(fmt.one_line(session.prompt, 200))}")
        print(f"{'':>13}  not started by codexdash: read-only")
        return 0
    view = engine.refresh([job])[0]
    engine.session_file(job)
    report = verify(job) if job.is_live else None
    if report:
        report.close()
    events = list(job.events.order_by(JobEvent.at))
    data = view.as_json()
    data.update(
        marker=job.marker,
        argv=job.argv_list,
        detail=job.detail,
        identity=report.as_dict() if report else None,
        history=[{"at": e.at, "kind": e.kind, "from": e.from_status, "to": e.to_status, "detail": e.detail_data} for e in events],
    )
    if args.json:
        _out(data)
        return 0
    import shlex

    color = use_color()
    data["model"] = data["model"] or "(Codex's default)"
    data["status"] = paint(fmt.status_label(job.status), STATUS_ANSI.get(job.status), color)
    for key in ("id", "name", "status", "pid", "cwd", "model", "created_at", "ended_at", "exit_code", "tokens", "session_id",
                "session_file", "parent_id", "retry_of", "detail", "error"):
        if data.get(key) is not None:
            value = data[key] if key == "status" else sanitize(str(data[key]))
            print(f"{key:>13}: {value}")
    print(f"{'prompt':>13}: {sanitize(fmt.one_line(job.prompt, 200))}")
    print(f"{'command':>13}: {sanitize(shlex.join(job.argv_list))}")
    if report:
        print("identity checks:")
        for c in report.checks:
            mark = paint("✔", "\x1b[32m", color) if c.ok else paint("✖", "\x1b[1;31m", color)
            print(f"  {mark} {c.name}: {sanitize(c.detail)}")
    print("history:")
    for e in events:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.at))
        what = f"{e.from_status or ''} → {e.to_status}" if e.kind == "state" else f"kill: {e.detail_data.get('outcome')}"
        print(f"  {when}  {what}")
    return 0


def _style(line, color: bool) -> str:
    if not color or not STYLE_ANSI.get(line.style):
        return line.text
    return f"{STYLE_ANSI[line.style]}{line.text}\x1b[0m"


def cmd_logs(args, ctx: Context) -> int:
    from codexdash.events import Event, Kind
    from codexdash.render import render_event, render_raw, render_tokens
    from codexdash.tail import Appended, is_compressed, open_session, open_session_raw, session_from, watch_files

    job = None
    path = Path(args.target).expanduser()
    if not path.is_file():
        if os.sep in args.target or args.target.endswith((".jsonl", ".jsonl.zst")):
            raise BadInput(f"no session file {args.target}")
        if (shown := _undecodable(args.target)) is not None:  # not a job id: a file that is not there
            raise BadInput(f"no session file {shown}")
        job, session = _job_or_session(ctx, args.target)
        found = session.session_file if session is not None else ctx.engine.session_file(job)
        while found is None and args.follow and job is not None and job.is_live:
            time.sleep(0.2)  # Codex creates its file a moment after it starts
            ctx.engine.reconcile(job)
            found = ctx.engine.session_file(job)
        if found is None:
            raise Refused(f"job {job.id} has no session file (yet)")
        path = Path(found)
    if args.tail is not None and args.tail < 0:
        raise BadInput("--tail takes a number of events, 0 or more")
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    out = sys.stdout
    tokens: list[int] = []

    def emit(events, raw_lines) -> None:
        if args.raw:
            for raw in raw_lines:
                out.write(_style(render_raw(raw), color) + "\n")
            return
        for event in events:
            if event.tokens is not None:
                tokens.append(event.tokens)
            for line in render_event(event):
                out.write(_style(line, color) + "\n")

    def notice(text: str) -> None:
        if not args.raw:  # raw output stays JSON lines only
            out.write(_style(render_event(Event(Kind.NOTICE, text))[0], color) + "\n")

    def finish() -> int:
        if tokens and not args.raw:
            out.write(_style(render_tokens(tokens[-1]), color) + "\n")
        out.flush()
        return 0

    with _reading(path):
        if args.tail is not None and args.raw:
            session = open_session_raw(path, args.tail)
            first = Appended([], session.lines)
        elif args.tail is not None:
            session = open_session(path, last=args.tail)
            first = Appended(session.events, session.lines)
        else:
            session = session_from(path)
            first = session.read_more()
    if args.tail is not None and session.truncated and not args.raw:
        notice("earlier events not shown")
    emit(first.events, first.lines)
    if first.problem:
        out.flush()
        raise Refused(first.problem)
    if not args.follow:
        return finish()
    if is_compressed(path):
        # Codex compresses only a session left untouched for days: nothing more will come.
        notice("the session file is compressed: Codex has finished with it")
        return finish()
    out.flush()
    last_check, last_problem = time.monotonic(), None
    changes = watch_files([path], threading.Event(), timeout_ms=1000)
    while True:
        with _reading(path):
            if next(changes, None) is None:
                return finish()
            more = session.read_more()
        if more.reset:
            notice("the file was truncated or replaced: reading it again")
        if more.problem != last_problem and more.problem:
            notice(more.problem)
        last_problem = more.problem
        emit(more.events, more.lines)
        out.flush()
        if job is not None and time.monotonic() - last_check >= 1.0:
            last_check = time.monotonic()
            ctx.engine.reconcile(job)
            if not job.is_live:
                with _reading(path):
                    last = session.read_more()
                emit(last.events, last.lines)
                return finish()


@contextmanager
def _reading(path: Path):
    """An error reading the session file, as one line. Only reads go under it: a failed write
    to stdout (a reader that went away) is not the file's fault, and main ends it quietly."""
    try:
        yield
    except OSError as exc:
        raise Refused(f"cannot read {path}: {exc.strerror}") from None


def cmd_kill(args, ctx: Context) -> int:
    from codexdash.kill import KillRefused, describe_plan, kill_job
    from codexdash.render import sanitize

    engine = ctx.engine
    job, session = _job_or_session(ctx, args.job)
    if session is not None:
        raise Refused(f"session {session.session_id} was not started by codexdash: no marker to verify; nothing was sent")

    def show_checks(report) -> None:
        print(f"job {job.id}  pid {job.pid}")
        if report.cmdline:
            print(f"  command: {sanitize(' '.join(report.cmdline))[:300]}")
        for c in report.checks:
            print(f"  {'✔' if c.ok else '✖'} {c.name}: {sanitize(c.detail)}")

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
    import subprocess

    from codexdash.jobs import resolve_codex_command

    s = ctx.settings
    problems = 0

    def line(ok: bool, text: str) -> None:
        nonlocal problems
        problems += 0 if ok else 1
        print(f"{'✔' if ok else '✖'} {text}")

    try:
        command = resolve_codex_command(s.codex_command)
        try:
            done = subprocess.run([*command, "--version"], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
            version = (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr).strip() else "?"
            line(done.returncode == 0, f"Codex command: {' '.join(command)} ({version})")
        except (OSError, subprocess.TimeoutExpired) as exc:
            line(False, f"Codex command: {' '.join(command)} does not answer --version: {exc}")
    except BadInput as exc:
        line(False, str(exc))
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
    print("no problems found" if problems == 0 else f"{problems} problem(s) found")
    return 0 if problems == 0 else 1


def cmd_demo(args, ctx: Context) -> int:
    from codexdash.demo import run_demo

    return run_demo(keep=args.keep)


COMMANDS = {
    "start": cmd_start,
    "resume": cmd_resume,
    "retry": cmd_retry,
    "list": cmd_list,
    "show": cmd_show,
    "logs": cmd_logs,
    "kill": cmd_kill,
    "doctor": cmd_doctor,
    "demo": cmd_demo,
}
