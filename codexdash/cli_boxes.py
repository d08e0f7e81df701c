"""The command line over boxes: `--host NAME`, `list --all-hosts`, `hosts`, `version`, and the
JSON forms of `kill` and `list --watch` that one codexdash reads from another (protocol.py;
`logs --json` is in cli.py, with `logs`).

Every command here talks to a `boxes.Box` and prints what it answers, so it reads the same for
this box and for one reached by ssh.
"""

from __future__ import annotations

import json
import os
import sys
import time

from codexdash import protocol
from codexdash.boxes import (
    LOCAL,
    Answer,
    Box,
    LocalBox,
    ProtocolMismatch,
    Snapshot,
    StartSpec,
    Unreachable,
    ask_all,
)
from codexdash.cli import Context, _out, print_checks, print_jobs
from codexdash.errors import BadInput, Refused
from codexdash.render import sanitize
from codexdash.records import JobStatus

STATE_ORDER = [*JobStatus.LIVE, *JobStatus.FINISHED]


def on_box(command: str, here):
    """The handler of `command` when --host names another box: the commands that only look
    are the same over any box; the rest say here how they reach one."""
    return {
        "start": start_on_box,
        "resume": resume_on_box,
        "retry": retry_on_box,
        "kill": kill_on_box,
        "doctor": doctor_on_box,
        "demo": demo_on_box,
    }.get(command, here)


def all_boxes(ctx: Context) -> list[Box]:
    """This box, then every configured one, in the order configured."""
    from codexdash.remote import SshBox

    return [ctx.box, *(SshBox(name, ctx.settings) for name in ctx.settings.hosts)]


def _problem(answer: Answer) -> str:
    return " ".join(str(answer.error).split())  # always one line


# ---- commands that start a job ----------------------------------------------------------------


def _prompt(text: str) -> str:
    return sys.stdin.read() if text == "-" else text


def _started(job: dict, as_json: bool) -> int:
    if as_json:
        _out(job)
    else:
        print(f"{job['id']} {job['pid']}")
    return 0


def start_on_box(args, ctx: Context) -> int:
    # No --cwd: the box's own default (the home directory ssh starts in), never a path from here.
    spec = StartSpec(prompt=_prompt(args.prompt), cwd=args.cwd, model=args.model, sandbox=args.sandbox, extra_args=args.extra,
                     name=args.name)
    return _started(ctx.box.start(spec), args.json)


def resume_on_box(args, ctx: Context) -> int:
    return _started(ctx.box.resume(args.job, _prompt(args.prompt), model=args.model, sandbox=args.sandbox, name=args.name),
                    args.json)


def retry_on_box(args, ctx: Context) -> int:
    return _started(ctx.box.retry(args.job), args.json)


# ---- kill: the box verifies and kills ----------------------------------------------------------


def kill_json(args, ctx: Context) -> int:
    """`kill --yes --json`: the checks as this box ran them and the outcome, as one JSON object."""
    if not args.yes:
        raise BadInput("kill --json needs --yes: a kill read by a program cannot be confirmed")
    result = ctx.box.kill(args.job, force=args.force)
    _out(result)
    if result["error"]:
        sys.stderr.write(f"codexdash: {result['error']}\n")
    return 0 if result["stopped"] else 1


def kill_on_box(args, ctx: Context) -> int:
    """The box verifies and kills; here its checks are shown as it ran them. Nothing is
    signalled from here: a PID means something only on its own box. Asked first (without
    --yes), the box runs the checks once to show them and again when it kills."""
    if args.json:
        return kill_json(args, ctx)
    box = ctx.box
    if not args.yes:
        identity = box.verify(args.job)
        print(f"job {args.job} on {box.name}  pid {identity['pid']}")
        print_checks(identity)
        if not identity["ok"]:
            raise Refused(f"{box.name}: refusing to kill job {args.job}: "
                          + "; ".join(f"{c['name']}: {c['detail']}" for c in identity["checks"] if not c["ok"]))
        plan = "SIGKILL" if args.force else "SIGINT, then SIGTERM, then SIGKILL after the box's grace periods"
        print(f"  will send: {plan}, on {box.name}, to the process group; then anything left carrying the marker")
        if not sys.stdin.isatty():
            raise BadInput("not a terminal: pass --yes to kill without asking")
        if input(f"Kill job {args.job} on {box.name}? [y/N] ").strip().lower() not in ("y", "yes"):
            raise Refused("kill cancelled; nothing was sent")
    result = box.kill(args.job, force=args.force)
    job = result["job"]
    print(f"job {job['id']} on {box.name}  pid {job['pid']}: checks as {box.name} ran them")
    print_checks(result["identity"])
    if result["outcome"] == "refused":
        raise Refused(f"{box.name}: {result['error']}")
    print(f"job {job['id']} on {box.name}: {job['status']} after {result['seconds']:.2f} s ({', '.join(result['sent'])})")
    return 0 if result["stopped"] else 1


# ---- watching the jobs -------------------------------------------------------------------------


def list_watch(args, ctx: Context) -> int:
    """`list --json --watch`: one process that stays, looking at the jobs every --interval
    seconds; a line {"jobs": [...]} first and whenever they changed, {"heartbeat": TIME} after
    --heartbeat seconds without a line. It ends, quietly, when its reader goes: EOF on stdin
    (ssh closes the session's input when its client goes) or stdout closed. A line on stdin
    asks for a look at once."""
    if not args.json:
        raise BadInput("--watch writes JSON lines for a program to read: add --json")
    if args.all_hosts:
        raise BadInput("--watch watches one box: leave out --all-hosts")
    watcher = ctx.box.watch(all_history=args.all, external=not args.no_external,
                            interval=2.0 if args.interval is None else args.interval,
                            heartbeat=5.0 if args.heartbeat is None else args.heartbeat)
    _end_with_the_reader(watcher)
    out = sys.stdout
    try:
        for item in watcher:
            if isinstance(item, Snapshot):
                out.write(json.dumps({"jobs": item.jobs}, ensure_ascii=False) + "\n")
            else:
                out.write(json.dumps({"heartbeat": round(time.time(), 3)}) + "\n")
            out.flush()
    finally:
        watcher.close()
    return 0


def _end_with_the_reader(watcher) -> None:
    """Closes the watch when stdin ends (when it is a pipe or a socket: a terminal or /dev/null
    is not a reader) or stdout fails, seen by a thread that waits on both; data on stdin is a
    nudge."""
    import select
    import stat
    import threading

    poller = select.poll()
    try:
        mode = os.fstat(0).st_mode
        if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            poller.register(0, select.POLLIN)
    except OSError:
        pass
    try:
        poller.register(1, 0)  # errors only: POLLERR once a pipe's reader closed it, POLLHUP for a socket
    except (OSError, ValueError):
        pass

    def wait() -> None:
        while True:
            for fd, _events in poller.poll():
                if fd == 0:
                    try:
                        data = os.read(0, 4096)
                    except OSError:
                        data = b""
                    if data:
                        watcher.nudge()
                        continue
                watcher.close()
                return

    threading.Thread(target=wait, name="codexdash-watch-reader", daemon=True).start()


# ---- what every box says -----------------------------------------------------------------------


def list_all_hosts(args, ctx: Context) -> int:
    """The jobs of this box and every configured one, newest first; each box that did not
    answer is one line on stderr, and the others are listed all the same."""
    if ctx.remote:
        raise BadInput("--all-hosts lists every configured box: leave out --host")
    rows: list[dict] = []
    failed = 0
    for answer in ask_all(all_boxes(ctx), lambda box: box.jobs(all_history=args.all, external=not args.no_external)):
        if answer.error is not None:
            failed += 1
            sys.stderr.write(f"codexdash: {_problem(answer)}\n")
        else:
            rows.extend(answer.value)
    rows.sort(key=lambda r: r["created_at"] or "", reverse=True)
    if args.json:
        _out(rows)
    elif rows:
        print_jobs(rows, host_column=True)
    else:
        print("no jobs" + ("" if args.all else " running or recent (--all for every job)"))
    return 1 if failed else 0


def _about(box: Box) -> dict:
    info = box.info()
    info["rtt_ms"] = None if isinstance(box, LocalBox) else round(box.ping() * 1000, 1)
    return info


def hosts(args, ctx: Context) -> int:
    if ctx.remote:
        raise BadInput("hosts asks every configured box: leave out --host")
    rows = []
    for answer in ask_all(all_boxes(ctx), _about):
        row = {"host": answer.box, "reachable": True, "state": "here" if answer.box == LOCAL else "reachable",
               "rtt_ms": None, "codexdash": None, "protocol": None, "watch": None, "codex": None, "jobs": None, "error": None}
        if answer.error is not None:
            state = ("unreachable" if isinstance(answer.error, Unreachable)
                     else "incompatible" if isinstance(answer.error, ProtocolMismatch) else "error")
            row.update(reachable=state != "unreachable", state=state,
                       error=_problem(answer).removeprefix(f"{answer.box}: "))
        else:
            info = answer.value
            row.update({k: info.get(k) for k in ("rtt_ms", "codexdash", "protocol", "codex", "jobs")})
            # Whether the dashboard can watch the box (one process there) or must ask it at each look.
            row["watch"] = isinstance(info.get("protocol"), int) and info["protocol"] >= protocol.WATCH
            row["error"] = info.get("db_error") or info.get("codex_error")
        rows.append(row)
    if args.json:
        _out(rows)
    else:
        table = [("HOST", "STATE", "RTT", "CODEXDASH", "CODEX", "JOBS")]
        for r in rows:
            table.append((
                sanitize(r["host"]), r["state"],
                f"{r['rtt_ms']:.0f} ms" if r["rtt_ms"] is not None else "-",
                (f"{r['codexdash']} (protocol {r['protocol']}{'' if r['watch'] else ', no watch: polled'})"
                 if r["codexdash"] else "-"),
                sanitize(r["codex"] or "-"),
                sanitize(_counts(r["jobs"]) if r["state"] in ("here", "reachable") and r["jobs"] is not None else r["error"] or "-"),
            ))
        widths = [max(len(t[i]) for t in table) for i in range(len(table[0]))]
        for t in table:
            print("  ".join(c.ljust(w) for c, w in zip(t, widths)).rstrip())
    return 0 if all(r["state"] in ("here", "reachable") for r in rows) else 1


def _counts(jobs: dict | None) -> str:
    if not jobs:
        return "no jobs"
    known = [s for s in STATE_ORDER if jobs.get(s)] + sorted(s for s in jobs if s not in STATE_ORDER)
    return ", ".join(f"{jobs[s]} {s.replace('_', ' ')}" for s in known)


def version(args, ctx: Context) -> int:
    info = ctx.box.info()
    if args.json:
        _out(info)
        return 0
    where = sanitize(info.get("hostname") or info["host"])
    print(f"codexdash {sanitize(str(info['codexdash']))} (protocol {info['protocol']}) on {where}")
    print(f"Codex: {sanitize(info['codex'])}" if info.get("codex") else f"Codex: ✖ {sanitize(info.get('codex_error') or '?')}")
    print(f"jobs: {_counts(info['jobs'])}" if info.get("jobs") is not None else f"database: ✖ {sanitize(info.get('db_error') or '?')}")
    return 0


# ---- the rest, on another box ------------------------------------------------------------------


def doctor_on_box(args, ctx: Context) -> int:
    """The box's own doctor, its lines made safe to print here."""
    box = ctx.box
    code, out, err = box.run(["doctor"])
    for line in out.splitlines():
        print(sanitize(line))
    if code not in (0, 1):
        raise box.failure(code, err)
    return code


def demo_on_box(args, ctx: Context) -> int:
    raise BadInput("demo runs here, on a sandbox of its own: leave out --host")

