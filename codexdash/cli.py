"""The command line: thin subcommands over the core. The dashboard is imported only to run it.

Exit status: 0 done, 1 refused or failed, 2 bad input. Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
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

    s = sub.add_parser("start", help="start a Codex job, detached")
    s.add_argument("prompt", help="the prompt ('-' reads it from stdin)")
    s.add_argument("--cwd", default=None, help="working directory (default: here)")
    s.add_argument("--model", help="model for Codex")
    s.add_argument("--sandbox", help="Codex sandbox mode")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("resume", help="a follow-up: continue a finished job's Codex session with a new prompt")
    s.add_argument("job")
    s.add_argument("prompt", help="the follow-up prompt ('-' reads it from stdin)")
    s.add_argument("--model", help="model for Codex (default: the job's)")
    s.add_argument("--sandbox", help="Codex sandbox mode (default: the job's)")
    s.add_argument("--json", action="store_true", help="print the new job as JSON")

    s = sub.add_parser("retry", help="run a job again: same prompt, cwd, model, sandbox and extra arguments")
    s.add_argument("job")
    s.add_argument("--json", action="store_true", help="print the new job as JSON")

    s = sub.add_parser("list", help="running and recent jobs")
    s.add_argument("--all", action="store_true", help="every job ever recorded")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("show", help="a job's record, identity checks and session file")
    s.add_argument("job")
    s.add_argument("--json", action="store_true")

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
    argv = list(sys.argv[1:] if argv is None else argv)
    argv, extra = _split_extra(argv)
    try:
        args = build_parser().parse_args(argv)
        args.extra = extra
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
        # The reader went away (`| head`): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _dashboard(ctx: Context) -> int:
    from codexdash.ui.app import run_dashboard

    return run_dashboard(ctx.engine)


def _out(data) -> None:
    # Indented for people; compact when read by a program (it is also much faster to write).
    print(json.dumps(data, indent=2 if sys.stdout.isatty() else None, ensure_ascii=False))


def cmd_start(args, ctx: Context) -> int:
    from codexdash.jobs import StartRequest

    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    request = StartRequest(prompt=prompt, cwd=args.cwd or os.getcwd(), model=args.model, sandbox=args.sandbox, extra_args=args.extra)
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
    parent = engine.find(args.job)
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    return _started(engine.resume(parent, prompt, model=args.model, sandbox=args.sandbox), args.json)


def cmd_retry(args, ctx: Context) -> int:
    engine = ctx.engine
    return _started(engine.retry(engine.find(args.job)), args.json)


def cmd_list(args, ctx: Context) -> int:
    from codexdash.render import sanitize

    if args.json:
        _out(ctx.engine.listing(all_history=args.all))
        return 0
    views = ctx.engine.refresh(all_history=args.all)
    if not views:
        print("no jobs" + ("" if args.all else " running or recent (--all for every job)"))
        return 0
    rows = [("ID", "STATUS", "PID", "TIME", "CPU", "MEM", "TOKENS", "CWD", "PROMPT")]
    now = time.time()
    for v in views:
        j = v.job
        rows.append((
            j.id,
            fmt.status_label(j.status),
            str(j.pid or "-"),
            fmt.duration(v.elapsed) if v.elapsed is not None else fmt.duration(now - j.created_at) + " ago",
            f"{v.stats.cpu_percent:.0f}%" if v.stats else "-",
            fmt.size(v.stats.rss_bytes) if v.stats else "-",
            fmt.tokens(v.total_tokens),
            sanitize(fmt.one_line(j.cwd, 30)),
            sanitize(fmt.one_line(j.prompt, 40)),
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def cmd_show(args, ctx: Context) -> int:
    from codexdash.identity import verify
    from codexdash.render import sanitize
    from codexdash.store import JobEvent

    engine = ctx.engine
    job = engine.find(args.job)
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
    for key in ("id", "status", "pid", "cwd", "model", "created_at", "ended_at", "exit_code", "tokens", "session_id", "session_file", "detail", "error"):
        if data.get(key) is not None:
            print(f"{key:>13}: {sanitize(str(data[key]))}")
    print(f"{'prompt':>13}: {sanitize(fmt.one_line(job.prompt, 200))}")
    if report:
        print("identity checks:")
        for c in report.checks:
            print(f"  {'✔' if c.ok else '✖'} {c.name}: {sanitize(c.detail)}")
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
    from codexdash.follow import Follower
    from codexdash.tail import open_session, session_from

    job = None
    path = Path(args.target).expanduser()
    if not path.is_file():
        if os.sep in args.target or args.target.endswith(".jsonl"):
            raise BadInput(f"no session file {args.target}")
        job = ctx.engine.find(args.target)
        found = ctx.engine.session_file(job)
        while found is None and args.follow and job.is_live:
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

    try:
        if args.tail is not None and args.raw:
            raws, end = _last_raw_lines(path, args.tail)
            session = session_from(path, offset=end)
            emit([], raws)
        elif args.tail is not None:
            session = open_session(path, last=args.tail)
            if session.truncated:
                notice("earlier events not shown")
            emit(session.events, session.lines)
        else:
            session = session_from(path)
            first = session.read_more()
            emit(first.events, first.lines)
        if not args.follow:
            return finish()
        out.flush()
        # Woken by the file's changes only; following a job, also once a second with nothing
        # new, to notice that the job ended.
        follower = Follower(session, timeout=1.0 if job is not None else None)
        last_check = time.monotonic()
        for more in follower:
            if more.reset:
                notice("the file was truncated or replaced: reading it again")
            emit(more.events, more.lines)
            if more.problem:
                notice(more.problem)
            out.flush()
            if more.ended:
                return finish()
            if job is not None and time.monotonic() - last_check >= 1.0:
                last_check = time.monotonic()
                ctx.engine.reconcile(job)
                if not job.is_live:
                    last = follower.read()
                    emit(last.events, last.lines)
                    return finish()
    except OSError as exc:
        raise Refused(f"cannot read {path}: {exc.strerror}") from None
    return 0


def _last_raw_lines(path: Path, n: int) -> tuple[list[bytes], int]:
    from codexdash.tail import iter_lines_backward, last_line_end

    fd = os.open(path, os.O_RDONLY)
    try:
        end = last_line_end(fd, os.fstat(fd).st_size)
        lines = []
        for line in iter_lines_backward(fd, end):
            if len(lines) >= n:
                break
            lines.append(line)
    finally:
        os.close(fd)
    return lines[::-1], end


def cmd_kill(args, ctx: Context) -> int:
    from codexdash.kill import KillRefused, describe_plan, kill_job
    from codexdash.render import sanitize

    engine = ctx.engine
    job = engine.find(args.job)

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
    print(f"job {job.id}: {job.status} after {result.seconds:.2f} s ({', '.join(result.sent)})")
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
