"""A stand-in for `codex exec` that writes session files in the real Codex format (0.169).

Used by the tests and by `codexdash demo`. It takes the options codexdash passes, refuses
unknown ones like the real CLI (exit 2), needs an existing CODEX_HOME (exit 1), and writes its
records one write() per line to `$CODEX_HOME/sessions/YYYY/MM/DD/rollout-...-<uuid>.jsonl`,
keeping the file open while it runs. SIGINT records `turn_aborted` and exits 1; SIGTERM ends
it with no final line, as with the real CLI.

What it does is read from words in the prompt:
  SLEEP n     run the tool command `sleep n` (in a session of its own, dying with us)
  STREAM n    write an agent message every second for n seconds
  FAIL        end with a model error (task_complete with error), exit 1
  CRASH       exit 3 without a final line
  IGNORE_TERM ignore SIGTERM;  IGNORE_SIGNALS  ignore SIGINT and SIGTERM
  ESCAPE n    start a process in a new session that outlives us for n seconds
  EXEC        exec() into `sleep 600` without the marker in its environment
  UNTIL path  wait (up to 120 s) until `path` exists: a test decides when the job goes on
  ECHO text   answer with `text` (the rest of the prompt)
  PATCH path text   (a line) write `text` as the whole content of `path`, through apply_patch
  DELETE path / MOVE path dest   (a line) delete or move a file, through apply_patch

A file edit is recorded as Codex 0.169 and 0.171 record their `apply_patch` tool: a
`custom_tool_call` with the patch text, an `item_completed` FileChange item (absolute paths,
`add` / `delete` with the content, `update` with the hunks and `move_path`), then the call's
output; a patch that cannot apply gets only an output saying why, as with the real CLI.
`--worktree` makes a detached Git worktree under `$CODEX_HOME/worktrees/` and runs there.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import difflib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

VERSION = "0.169.0"
SANDBOX_MODES = ("read-only", "workspace-write", "danger-full-access")
PR_SET_PDEATHSIG = 1


def uuid7() -> str:
    ms = int(time.time() * 1000)
    rand = secrets.randbits(74)
    value = (ms << 80) | (0x7 << 76) | ((rand >> 62) << 64) | (0b10 << 62) | (rand & ((1 << 62) - 1))
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Session:
    def __init__(self, codex_home: Path, cwd: str, model: str) -> None:
        self.id = uuid7()
        start = dt.datetime.now()
        day = codex_home / "sessions" / f"{start:%Y}" / f"{start:%m}" / f"{start:%d}"
        day.mkdir(parents=True, exist_ok=True)
        self.path = day / f"rollout-{start:%Y-%m-%dT%H-%M-%S}-{self.id}.jsonl"
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.ordinal = 0
        self.cwd = cwd
        self.model = model
        self.tokens = 0

    @classmethod
    def resumed(cls, codex_home: Path, session_id: str, cwd: str, model: str) -> Session:
        """`exec resume SESSION_ID`: the new turn is appended to the session's own file."""
        found = [p for p in (codex_home / "sessions").rglob(f"rollout-*-{session_id}.jsonl")]
        if not found:
            _fail(f"Error: thread/resume: no rollout found for thread id {session_id}", 1)
        s = cls.__new__(cls)
        s.id, s.path, s.cwd, s.model, s.tokens = session_id, found[0], cwd, model, 0
        s.fd = os.open(s.path, os.O_WRONLY | os.O_APPEND)
        s.ordinal = sum(1 for _ in open(s.path, "rb"))
        return s

    @classmethod
    def ephemeral(cls, cwd: str, model: str) -> Session:
        """`--ephemeral`: a session that is never written to disk."""
        s = cls.__new__(cls)
        s.id, s.path, s.fd, s.ordinal, s.cwd, s.model, s.tokens = uuid7(), None, None, 0, cwd, model, 0
        return s

    def write(self, rtype: str, payload: dict) -> None:
        if self.fd is None:
            return
        ts = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        line = json.dumps({"timestamp": ts, "ordinal": self.ordinal, "type": rtype, "payload": payload})
        os.write(self.fd, (line + "\n").encode())  # one record, one write(), as Codex does
        self.ordinal += 1

    def event(self, etype: str, **fields) -> None:
        self.write("event_msg", {"type": etype, **fields})

    def message(self, role: str, text: str) -> None:
        kind = "output_text" if role == "assistant" else "input_text"
        self.write("response_item", {"type": "message", "role": role, "content": [{"type": kind, "text": text}]})

    def count_tokens(self, n: int) -> None:
        self.tokens += n
        total = {"input_tokens": self.tokens * 2 // 3, "output_tokens": self.tokens // 3, "total_tokens": self.tokens}
        self.event("token_count", info={"total_token_usage": total, "last_token_usage": total})


def _fail(message: str, code: int) -> None:
    sys.stderr.write(message + "\n")
    raise SystemExit(code)


def parse_args(argv: list[str]) -> dict:
    if argv[:1] == ["--version"]:
        print(f"codex-cli {VERSION} (codexdash fake)")
        raise SystemExit(0)
    if argv[:1] != ["exec"]:
        _fail(f"error: unrecognized subcommand '{argv[0] if argv else ''}'", 2)
    opts: dict = {"config": [], "model": "fake-model", "sandbox": "workspace-write", "cd": None, "prompt": None,
                  "skip_git": False, "thread_source": None}
    args = iter(argv[1:])
    for arg in args:
        if arg == "--":
            opts["prompt"] = next(args, None)
            break
        if arg == "--skip-git-repo-check":
            opts["skip_git"] = True
        elif arg in ("-c", "--config"):
            opts["config"].append(next(args, ""))
        elif arg in ("-m", "--model"):
            opts["model"] = next(args, "")
        elif arg in ("-s", "--sandbox"):
            opts["sandbox"] = next(args, "")
            if opts["sandbox"] not in SANDBOX_MODES:  # clap's message, as the real CLI prints it
                _fail(f"error: invalid value '{opts['sandbox']}' for '--sandbox <SANDBOX_MODE>'\n"
                      f"  [possible values: {', '.join(SANDBOX_MODES)}]\n\nFor more information, try '--help'.", 2)
        elif arg == "--thread-source":
            opts["thread_source"] = next(args, "")
        elif arg in ("-C", "--cd"):
            opts["cd"] = next(args, "")
        elif arg in ("--json", "--ephemeral", "--full-auto", "--worktree"):
            opts[arg[2:]] = True
        elif arg.startswith("-") and arg != "-":
            _fail(f"error: unexpected argument '{arg}' found", 2)
        elif arg == "resume" and "resume" not in opts:
            opts["resume"] = next(args, "")  # `exec [flags] resume SESSION_ID [--] PROMPT`
        else:
            opts["prompt"] = arg
            break
    return opts


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _number(prompt: str, word: str, default: float) -> float | None:
    m = re.search(rf"\b{word}\s+(\d+(?:\.\d+)?)", prompt)
    if m:
        return float(m.group(1))
    return default if re.search(rf"\b{word}\b", prompt) else None


def run(opts: dict) -> int:
    home = Path(os.environ.get("CODEX_HOME") or Path.home() / ".codex")
    if not home.is_dir():
        _fail(f"Error: CODEX_HOME points to {str(home)!r}, but that path does not exist", 1)
    if not opts["skip_git"]:
        _fail("Not inside a trusted directory and --skip-git-repo-check was not specified.", 1)
    if opts["cd"]:
        os.chdir(opts["cd"])
    git = _git_info()
    if opts.get("worktree"):
        if opts.get("resume"):
            _fail("Error: `--worktree` cannot resume an existing session; use `codex exec fork --worktree`", 1)
        if git is None:
            _fail("Error: git command failed: fatal: not a git repository (or any of the parent directories): .git", 1)
        git = _make_worktree(home, git)
    prompt = opts["prompt"]
    if prompt is None or prompt == "-":
        prompt = sys.stdin.read()
    if not prompt.strip():
        _fail("No prompt provided.", 1)
    if "IGNORE_SIGNALS" in prompt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    elif "IGNORE_TERM" in prompt:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    if opts.get("resume"):
        s = Session.resumed(home, opts["resume"], os.getcwd(), opts["model"])
    elif opts.get("ephemeral"):
        s = Session.ephemeral(os.getcwd(), opts["model"])
    else:
        s = Session(home, os.getcwd(), opts["model"])
    turn = uuid7()
    # stderr in human mode: a header, as the real CLI prints it.
    sys.stderr.write(f"OpenAI Codex v{VERSION} (research preview)\n--------\nworkdir: {s.cwd}\nmodel: {opts['model']}\n"
                     f"provider: fake\napproval: never\nsandbox: {opts['sandbox']}\nsession id: {s.id}\n--------\n")
    sys.stderr.flush()

    def interrupted(_sig, _frame):
        s.message("user", "<turn_aborted>\nThe user interrupted the previous turn on purpose.\n</turn_aborted>")
        s.event("turn_aborted", turn_id=turn, reason="interrupted")
        raise SystemExit(1)

    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, interrupted)

    meta = {"id": s.id, "session_id": s.id, "timestamp": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z", "cwd": s.cwd,
            "originator": "codex_exec", "cli_version": VERSION, "source": "exec",
            "model_provider": "fake", "base_instructions": "You are a fake Codex agent."}
    if opts["thread_source"] is not None:
        meta["thread_source"] = opts["thread_source"]  # written verbatim, as 0.169 and 0.171 do
    if git is not None:
        meta["git"] = {k: git[k] for k in ("commit_hash", "branch") if git.get(k)}
    if not opts.get("resume"):  # a resumed session appends its turn: no second session_meta
        s.write("session_meta", meta)
    s.event("task_started", turn_id=turn)
    s.message("developer", "<permissions instructions>sandbox: " + opts["sandbox"] + "</permissions instructions>")
    s.message("user", f"<environment_context>\n  <cwd>{s.cwd}</cwd>\n  <shell>bash</shell>\n</environment_context>")
    s.write("turn_context", {"turn_id": turn, "cwd": s.cwd, "model": opts["model"], "approval_policy": "never",
                             "sandbox_policy": {"type": opts["sandbox"]}})
    s.message("user", prompt)
    s.event("item_completed", item={"type": "UserMessage", "content": [{"type": "text", "text": prompt}]})
    s.count_tokens(10)

    if "EXEC" in re.findall(r"\b[A-Z_]+\b", prompt):
        env = {k: v for k, v in os.environ.items() if k != "CODEXDASH_JOB"}
        os.execve("/bin/sleep", ["sleep", "600"], env)

    escape = _number(prompt, "ESCAPE", 60)
    if escape is not None:
        subprocess.Popen(["sleep", str(escape)], start_new_session=True, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sleep = _number(prompt, "SLEEP", 30)
    if sleep is not None:
        call = "call_" + secrets.token_hex(4)
        s.write("response_item", {"type": "function_call", "name": "exec_command", "call_id": call,
                                  "arguments": json.dumps({"cmd": f"sleep {sleep:g}", "yield_time_ms": 30000})})
        started = time.monotonic()
        tool = subprocess.Popen(["sleep", f"{sleep:g}"], start_new_session=True, preexec_fn=_die_with_parent,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        code = tool.wait()
        wall = time.monotonic() - started
        s.event("item_completed", item={"type": "CommandExecution", "id": call, "command": ["/bin/bash", "-lc", f"sleep {sleep:g}"],
                                        "status": "completed", "aggregated_output": "", "exit_code": code})
        s.write("response_item", {"type": "function_call_output", "call_id": call,
                                  "output": f"Wall time: {wall:.4f} seconds\nProcess exited with code {code}\nOutput:\n"})
        s.count_tokens(15)
    until = re.search(r"\bUNTIL\s+(\S+)", prompt)
    if until:
        deadline = time.monotonic() + 120
        while not os.path.exists(until.group(1)) and time.monotonic() < deadline:
            time.sleep(0.05)
    for m in re.finditer(r"^(PATCH|DELETE|MOVE)[ \t]+(\S+)(?:[ \t]+(.*))?$", prompt, re.M):
        _apply_patch(s, m.group(1), m.group(2), m.group(3) or "")
    stream = _number(prompt, "STREAM", 30)
    if stream is not None:
        for i in range(int(stream)):
            s.message("assistant", f"working… step {i + 1} of {int(stream)}")
            s.count_tokens(7)
            time.sleep(1)
    if "CRASH" in prompt:
        return 3
    if "FAIL" in prompt:
        message = "Connection failed: error sending request (fake model server unreachable)"
        s.event("task_complete", turn_id=turn, last_agent_message=None, error={"message": message})
        sys.stderr.write(f"ERROR: {message}\n")
        return 1
    m = re.search(r"\bECHO\s+(.*)", prompt, re.S)
    answer = m.group(1) if m else f"Done: {prompt[:60]}"
    s.message("assistant", answer)
    s.count_tokens(5)
    s.event("task_complete", turn_id=turn, last_agent_message=answer)
    return 0


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _git_info() -> dict | None:
    """session_meta's `git` block: the HEAD commit and branch where the session starts."""
    here = Path.cwd()
    if not any((d / ".git").exists() for d in (here, *here.parents)):
        return None  # not in Git: no subprocess
    root = _git("rev-parse", "--show-toplevel")
    if root is None:
        return None
    return {"root": root, "commit_hash": _git("rev-parse", "--verify", "-q", "HEAD"),
            "branch": _git("symbolic-ref", "-q", "--short", "HEAD")}


def _make_worktree(home: Path, git: dict) -> dict:
    """`--worktree`: a detached worktree at HEAD under $CODEX_HOME/worktrees/<4 hex>/<repo name>."""
    path = home / "worktrees" / secrets.token_hex(2) / Path(git["root"]).name
    path.parent.mkdir(parents=True, exist_ok=True)
    if _git("worktree", "add", "--detach", str(path), "HEAD") is None:
        _fail("Error: git command failed: could not create the worktree", 1)
    inside = os.path.relpath(os.getcwd(), git["root"])
    os.chdir(path / inside if inside != "." else path)
    return {"root": str(path), "commit_hash": git["commit_hash"]}  # detached: no branch


def _apply_patch(s: Session, verb: str, path: str, text: str) -> None:
    """One apply_patch call, recorded as the real CLI records it."""
    call = "call_" + secrets.token_hex(4)
    full = os.path.normpath(os.path.join(s.cwd, path))
    old = None
    if os.path.isfile(full):
        with open(full, encoding="utf-8", errors="surrogateescape") as fh:
            old = fh.read()
    if verb == "PATCH":
        new = text + "\n"
        if old is None:
            patch = f"*** Add File: {path}\n" + "".join(f"+{line}\n" for line in new.split("\n")[:-1])
            change, summary = {"type": "add", "content": new}, f"A {path}"
        else:
            hunks = "".join(line if line.endswith("\n") else line + "\n" for line in
                            list(difflib.unified_diff(old.splitlines(True), new.splitlines(True), n=3))[2:])
            patch = f"*** Update File: {path}\n@@\n" + "".join(f"-{line}\n" for line in old.split("\n")[:-1] or [""]) \
                + "".join(f"+{line}\n" for line in new.split("\n")[:-1])
            change, summary = {"type": "update", "unified_diff": hunks, "move_path": None}, f"M {path}"
        changes = {full: change}
    elif verb == "DELETE":
        patch, changes, summary = f"*** Delete File: {path}\n", {full: {"type": "delete", "content": old or ""}}, f"D {path}"
    else:
        dest = os.path.normpath(os.path.join(s.cwd, text.split()[0])) if text.split() else ""
        patch = f"*** Update File: {path}\n*** Move to: {text.split()[0] if text.split() else ''}\n"
        changes = {full: {"type": "update", "unified_diff": "", "move_path": dest}}
        summary = f"M {text.split()[0] if text.split() else ''}"
    body = f"*** Begin Patch\n{patch}*** End Patch\n"
    s.write("response_item", {"type": "custom_tool_call", "status": "completed", "call_id": call, "name": "apply_patch",
                              "input": body})
    if old is None and verb != "PATCH":
        reason = f"Failed to read file to update {full}: No such file or directory (os error 2)"
        s.write("response_item", {"type": "custom_tool_call_output", "call_id": call,
                                  "output": f"apply_patch verification failed: {reason}"})
        return
    try:
        if verb == "PATCH":
            os.makedirs(os.path.dirname(full) or ".", exist_ok=True)
            with open(full, "w", encoding="utf-8", errors="surrogateescape") as fh:
                fh.write(text + "\n")
        elif verb == "DELETE":
            os.unlink(full)
        else:
            os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
            os.rename(full, dest)
    except OSError as exc:
        s.write("response_item", {"type": "custom_tool_call_output", "call_id": call,
                                  "output": f"apply_patch verification failed: {exc}"})
        return
    stdout = f"Success. Updated the following files:\n{summary}\n"
    s.event("item_completed", item={"type": "FileChange", "id": call, "changes": changes, "status": "completed",
                                    "stdout": stdout, "stderr": ""})
    s.write("response_item", {"type": "custom_tool_call_output", "call_id": call,
                              "output": f"Exit code: 0\nWall time: 0 seconds\nOutput:\n{stdout}"})


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    return run(opts)


def install(directory: Path) -> Path:
    """Writes an executable `codex` into `directory` that runs this fake; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "codex"
    path.write_text(f"#!{sys.executable}\nimport sys\nfrom codexdash.fake_codex import main\nsys.exit(main())\n")
    path.chmod(0o755)
    return path


if __name__ == "__main__":
    sys.exit(main())
