"""A cold `codexdash list` loads only what it uses: no UI toolkit, no ORM or process library
when the store and the processes can be read directly, no platformdirs for the plain case."""

from __future__ import annotations

import json
import time
import subprocess
import sys
from pathlib import Path

import platformdirs
from hypothesis import given, settings, strategies as st
import pytest

from codexdash import config


@pytest.mark.parametrize("env", [
    {"HOME": "/home/op"},
    {"HOME": "/home/op/"},
    {"HOME": "/"},
    {"HOME": "/home/op", "XDG_DATA_HOME": "", "XDG_CONFIG_HOME": ""},
    {"HOME": "/home/op", "XDG_DATA_HOME": "/srv/data", "XDG_CONFIG_HOME": "/srv/conf"},
    {"HOME": "/home/op", "XDG_DATA_HOME": "relative/data", "XDG_CONFIG_HOME": "~/conf"},
    {"HOME": "relative"},
])
def test_default_paths_are_platformdirs_answers(monkeypatch, env):
    for key in ("HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "ANDROID_DATA"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    try:
        expected = (Path(platformdirs.user_data_dir("codexdash")) / "jobs.db",
                    Path(platformdirs.user_config_dir("codexdash")) / "config.toml")
    except RuntimeError:  # platformdirs refuses a home it cannot resolve: so does codexdash
        with pytest.raises(RuntimeError):
            config.default_db_path()
        return
    assert (config.default_db_path(), config.default_config_path()) == expected


from codexdash.listing import quick_listing  # noqa: E402
from codexdash.store import Job, JobStatus  # noqa: E402
from tests.conftest import wait_for  # noqa: E402
from tests.test_external import run_codex_by_hand  # noqa: E402

HEAVY = ("textual", "rich", "peewee", "psutil", "platformdirs")


def loaded_by_list(sandbox, *args: str) -> set[str]:
    code = ("import sys, io; from codexdash.cli import main; out = sys.stdout; sys.stdout = io.StringIO(); "
            f"code = main(['list', *{list(args)!r}]); sys.stdout = out; "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))); sys.exit(code)")
    env = {k: v for k, v in sandbox.env().items() if k not in ("XDG_DATA_HOME", "XDG_CONFIG_HOME")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return set(eval(done.stdout))  # noqa: S307 - our own print of a list of names


def comparable(rows: list[dict]) -> list[dict]:
    # The figures of a live process move between two looks: whether there are figures is compared.
    return [{**r, "cpu_percent": r["cpu_percent"] is not None, "rss_bytes": r["rss_bytes"] is not None} for r in rows]


def test_list_of_running_and_finished_jobs_loads_neither_the_ui_nor_the_orm_nor_psutil(sandbox):
    done = sandbox.start("ECHO finished")
    running = sandbox.start("STREAM 200")
    run_codex_by_hand(sandbox, "ECHO by hand")
    wait_for(lambda: sandbox.engine.refresh([running, done]) and running.session_file and not done.is_live,
             message="the session file of the running job and the end of the other")
    for args in ((), ("--json",), ("--all",)):
        assert loaded_by_list(sandbox, *args) == set()
    rows = quick_listing(sandbox.settings)
    assert [r["id"] for r in rows if not r["external"]] == [running.id, done.id]
    assert len(rows) == 3 and rows[0]["tokens"] is not None
    assert comparable(rows) == comparable(sandbox.engine.listing())
    assert comparable(quick_listing(sandbox.settings, all_history=True, external=False)) == \
        comparable(sandbox.engine.listing(all_history=True, external=False))


def test_the_quick_look_gives_way_to_the_engine_when_it_has_work_to_do(sandbox, tmp_path):
    from codexdash.config import Settings

    assert quick_listing(Settings(codex_home=sandbox.codex_home, db_path=tmp_path / "none.db")) is None  # to create
    assert quick_listing(sandbox.settings) == []
    job = sandbox.start("please SLEEP 30")
    from codexdash.session_files import iter_session_files

    wait_for(lambda: iter_session_files(sandbox.codex_home), message="the job's session file")
    assert quick_listing(sandbox.settings) is None  # held open by the job: to be recorded by the engine
    wait_for(lambda: sandbox.engine.refresh([job]) and job.session_file, message="its session file")
    assert quick_listing(sandbox.settings) is not None
    assert quick_listing(sandbox.settings.with_overrides(notify_command=("true",))) is None  # a stall to check
    sandbox.engine._children[job.id].kill()
    sandbox.engine._children[job.id].wait()  # its record says running: it is to be settled
    assert quick_listing(sandbox.settings) is None
    listed = sandbox.cli("list", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout)[0]["status"] == JobStatus.LOST, listed.stderr  # settled by the engine
    with sandbox.engine.store.write():
        Job.update(status=JobStatus.STOPPING).where(Job.id == job.id).execute()
    assert quick_listing(sandbox.settings) is None  # a kill in progress or abandoned
    sandbox.engine.store.db.execute_sql("UPDATE schemainfo SET value = '2' WHERE key = 'schema_version'")
    assert quick_listing(sandbox.settings) is None  # to upgrade


def test_the_recent_look_reads_recent_day_folders_only(sandbox):
    """Without Codex's index: sessions started in the window, or in the week before it and
    active since, are listed; older ones only by --all, which walks every folder."""
    import datetime as dt
    import os
    import uuid

    from codexdash.jobs import RECENT_SECONDS
    from codexdash.external import external_sessions
    from tests.conftest import SAMPLES

    now = time.time()

    def session(days_ago: float, touched_ago: float) -> str:
        started = dt.datetime.fromtimestamp(now - days_ago * 86400)
        folder = sandbox.codex_home / "sessions" / f"{started:%Y}" / f"{started:%m}" / f"{started:%d}"
        folder.mkdir(parents=True, exist_ok=True)
        sid = str(uuid.uuid4())
        path = folder / f"rollout-{started:%Y-%m-%dT%H-%M-%S}-{sid}.jsonl"
        path.write_bytes((SAMPLES / "completed-message.jsonl").read_bytes())
        os.utime(path, (now - touched_ago, now - touched_ago))
        return str(path)

    today = session(0.1, 60)
    week_old_active = session(5, 600)
    week_old_quiet = session(5, 5 * 86400)
    month_old_active = session(30, 600)
    since = now - RECENT_SECONDS
    recent = {s.session_file for s in external_sessions(sandbox.codex_home, set(), since)}
    assert recent == {today, week_old_active}
    every = {s.session_file for s in external_sessions(sandbox.codex_home, set(), None)}
    assert every == {today, week_old_active, week_old_quiet, month_old_active}


def test_the_end_of_a_session_is_decoded_once_and_a_huge_output_is_not_searched_whole(tmp_path, monkeypatch):
    import codexdash.events as events
    from codexdash.tail import open_session

    big = "x" * 3_000_000 + "\nExit code: 7\n"  # an output with no header: its text is not a header
    lines = [json.dumps({"type": "response_item", "payload": {"type": "function_call", "name": "shell", "call_id": "c",
                                                             "arguments": "{}"}}),
             json.dumps({"type": "response_item", "payload": {"type": "function_call_output", "call_id": "c", "output": big}}),
             json.dumps({"type": "response_item", "payload": {"type": "function_call_output", "call_id": "d",
                                                             "output": "Exit code: 3\nWall time: 1 s\nOutput:\nok"}})]
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(lines) + "\n")
    decoded = []
    real = events.json.loads
    monkeypatch.setattr(events.json, "loads", lambda text, *a, **k: decoded.append(len(text)) or real(text, *a, **k))
    opened = open_session(path, last=10)
    assert sorted(decoded)[-3:] == sorted(len(line) for line in lines)  # each line once, not to count then to show
    assert len([n for n in decoded if n > 100]) == 3
    results = [e for e in opened.events if e.kind == events.Kind.COMMAND_RESULT]
    assert [r.exit_code for r in results] == [None, 3]


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab ,.;\t\n\r\x0b\x0c\x1c\x85\u2028\u3000\xa0é")), max_size=60))
def test_a_short_one_line_prompt_is_its_own_title(prompt):
    from codexdash.format import title

    line = next((ln.strip() for ln in prompt.splitlines() if ln.strip()), "")
    line = " ".join(line.split())
    if len(line) <= 40:
        assert title(prompt) == line
    else:
        space = line.rfind(" ", 0, 40)
        assert title(prompt) == (line[:space] if space > 0 else line[:39]).rstrip(" ,.;:") + "…"


def test_a_live_job_holding_no_session_file_is_listed_without_the_engine_as_the_engine_lists_it(sandbox):
    import psutil

    child = subprocess.Popen(["sleep", "60"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        with sandbox.engine.store.write():
            Job.create(id="bare", marker="m-bare", status=JobStatus.RUNNING, argv="[]", cwd="/tmp", prompt="a bare process",
                       created_at=time.time(), pid=child.pid, pid_start_time=psutil.Process(child.pid).create_time(),
                       started_at=time.time())
        quick = quick_listing(sandbox.settings)
        assert quick is not None and quick[0]["id"] == "bare" and quick[0]["rss_bytes"] is not None
        assert comparable(quick) == comparable(sandbox.engine.listing())
    finally:
        child.kill()
        child.wait()


@settings(max_examples=300, deadline=None)
@given(st.tuples(
    st.text(max_size=12), st.one_of(st.none(), st.text(max_size=20)), st.one_of(st.none(), st.integers(0, 2**31)),
    st.sampled_from(list(JobStatus.FINISHED)), st.text(max_size=30), st.text(max_size=80), st.one_of(st.none(), st.text(max_size=10)),
    st.floats(0, 4e9), st.one_of(st.none(), st.floats(0, 4e9)), st.one_of(st.none(), st.integers(-300, 300)),
    st.one_of(st.none(), st.text(max_size=10)), st.one_of(st.none(), st.text(max_size=30)), st.one_of(st.none(), st.integers(0, 2**40)),
    st.one_of(st.none(), st.dictionaries(st.text(max_size=8), st.integers(0, 10**9), max_size=4).map(json.dumps)),
    st.one_of(st.none(), st.text(max_size=30)), st.one_of(st.none(), st.text(max_size=10)), st.one_of(st.none(), st.text(max_size=10)),
    st.one_of(st.none(), st.text(max_size=20))).filter(lambda row: not any(isinstance(v, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in v) for v in row)))
def test_a_finished_jobs_json_text_is_what_json_writes_of_its_dict(row):
    from codexdash.listing import row_json, row_text

    assert row_text(row) == json.dumps(row_json(row), ensure_ascii=False)


def test_a_value_of_another_type_than_its_column_is_written_by_json():
    from codexdash.listing import row_json, row_text

    row = ("j", None, "12", "completed", "/tmp", "p", None, 1.5, 2, 3.0, None, None, b"x".decode(), None, None, None, None, None)
    assert row_text(row) == json.dumps(row_json(row), ensure_ascii=False)


def test_list_json_piped_is_the_listing_as_json_writes_it(sandbox):
    """The piped `list --json` writes finished jobs from their rows: the same text, live jobs,
    sessions started elsewhere (sorted in among them) and awkward text included."""
    done = sandbox.start("ECHO finished\n\x1b[31m \"quoted\" é\u2028")
    running = sandbox.start("STREAM 200")
    run_codex_by_hand(sandbox, "ECHO by hand")
    wait_for(lambda: sandbox.engine.refresh([running, done]) and running.session_file and not done.is_live,
             message="the session file of the running job and the end of the other")
    with sandbox.engine.store.write():
        Job.update(tokens_detail=json.dumps({"input_tokens": 5, "ü": 1}), error="bad\tthing\x00").where(Job.id == done.id).execute()
    listed = sandbox.cli("list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["id"] for r in rows if not r["external"]] == [running.id, done.id] and len(rows) == 3
    assert comparable(rows) == comparable(quick_listing(sandbox.settings))
    expected = json.dumps([r for r in quick_listing(sandbox.settings) if r["id"] == done.id], ensure_ascii=False)[1:-1]
    assert expected in listed.stdout


def test_logs_of_a_session_file_opens_no_store_and_loads_no_orm_psutil_or_watchfiles(sandbox, tmp_path):
    from tests.conftest import SAMPLES

    path = tmp_path / "rollout-2026-01-01T00-00-00-0199a213-81c0-7800-8aa1-bbab2a035a53.jsonl"
    path.write_bytes((SAMPLES / "completed-tool-call.jsonl").read_bytes())
    not_a_store = tmp_path / "not-a-store.db"
    not_a_store.write_bytes(b"this is not an SQLite database\n" * 100)
    code = ("import sys, io; from codexdash.cli import main; out = sys.stdout; sys.stdout = io.StringIO(); "
            f"code = main(['logs', {str(path)!r}, '--tail', '20']); shown = sys.stdout.getvalue(); sys.stdout = out; "
            "print(repr(shown)); "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({[*HEAVY, 'watchfiles', 'sqlite3']!r}))); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env=sandbox.env(CODEXDASH_DB=str(not_a_store)))
    assert done.returncode == 0, done.stderr
    shown, loaded = done.stdout.splitlines()
    assert eval(loaded) == []  # noqa: S307 - our own print of a list of names
    assert "hi from mock" in eval(shown) and eval(shown) == sandbox.cli("logs", str(path), "--tail", "20").stdout  # noqa: S307
    assert not_a_store.read_bytes().startswith(b"this is not")


# What `logs FILE` must not load: each costs a few milliseconds of a command that takes a few dozen
# (dataclasses brings inspect, ast, dis and tokenize; the box interface typing and subprocess;
# argparse's terminal width shutil, with zlib, bz2 and lzma).
NOT_FOR_LOGS_OF_A_FILE = ("dataclasses", "inspect", "typing", "subprocess", "shutil", "codexdash.boxes",
                          "codexdash.cli_boxes", "codexdash.config")


@pytest.mark.parametrize("args", [("--tail", "20"), ("--raw", "--tail", "5"), ("--json",), ()])
def test_logs_of_a_session_file_loads_no_dataclasses_nor_the_box_interface(sandbox, tmp_path, args):
    from tests.conftest import SAMPLES

    path = tmp_path / "rollout-2026-01-01T00-00-00-0199a213-81c0-7800-8aa1-bbab2a035a53.jsonl"
    path.write_bytes((SAMPLES / "completed-tool-call.jsonl").read_bytes())
    code = ("import sys, io; from codexdash.cli import main; out = sys.stdout; sys.stdout = io.StringIO(); "
            f"code = main(['logs', {str(path)!r}, *{list(args)!r}]); shown = sys.stdout.getvalue(); sys.stdout = out; "
            "print(repr(shown)); "
            f"print(sorted(m for m in {list(NOT_FOR_LOGS_OF_A_FILE)!r} if m in sys.modules)); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=sandbox.env())
    assert done.returncode == 0, done.stderr
    shown, loaded = done.stdout.splitlines()
    assert eval(loaded) == []  # noqa: S307 - our own print of a list of names
    assert eval(shown) == sandbox.cli("logs", str(path), *args).stdout  # noqa: S307
    assert "hi from mock" in eval(shown) or "--raw" in args  # noqa: S307
