"""Several boxes, each a real sshd on 127.0.0.1 with its own PID namespace, store and CODEX_HOME,
driven by the CLI as an operator drives it: through their own ssh and its configuration."""

from __future__ import annotations

import json
import socket
import threading

import pytest

from tests.conftest import wait_for
from tests.ssh_boxes import make_fleet, tear_down, why_not
from tests.test_cli import Watch

pytestmark = pytest.mark.skipif(why_not() is not None, reason=f"SSH boxes: {why_not()}")


@pytest.fixture
def fleet(sandbox):
    fleet = make_fleet(sandbox, ["box1", "box2"])
    yield fleet
    tear_down(fleet)


def ok(result) -> str:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return result.stdout


def start(fleet, host: str, prompt: str) -> dict:
    return json.loads(ok(fleet.cli("--host", host, "start", "--json", prompt)))


def status(fleet, host: str, job: dict) -> str:
    return json.loads(ok(fleet.cli("--host", host, "show", job["id"], "--json")))["status"]


class Follow:
    """`codexdash ... logs -f` running, its output gathered as it comes."""

    def __init__(self, fleet, *args: str) -> None:
        self.proc = fleet.popen(*args)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
        self.reader.start()

    def saw(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    def finish(self) -> tuple[int, str]:
        code = self.proc.wait(timeout=60)
        self.reader.join(timeout=10)
        return code, self.proc.stderr.read()


def test_a_job_started_on_a_box_lives_there(fleet):
    job = start(fleet, "box1", "STREAM 60")
    assert job["host"] == "box1" and job["status"] == "running"
    assert job["cwd"] == str(fleet.boxes["box1"].root / "home")  # the box's default, not a directory from here
    # It runs in box1's namespace, from box1's store; the ssh session that started it is over.
    box1 = fleet.boxes["box1"]
    assert box1.process(job["pid"]) is not None
    assert json.loads(ok(fleet.cli("list", "--json"))) == []  # not a job of this box
    assert json.loads(ok(fleet.cli("--host", "box2", "list", "--json"))) == []
    assert wait_for(lambda: "step 2 of 60" in ok(fleet.cli("--host", "box1", "logs", job["id"])), message="its session")
    assert status(fleet, "box1", job) == "running"
    (row,) = json.loads(ok(fleet.cli("--host", "box1", "list", "--json")))
    assert row["id"] == job["id"] and row["host"] == "box1"
    shown = ok(fleet.cli("--host", "box1", "show", job["id"]))
    assert "host: box1" in shown and "✔ marker" in shown


def test_list_across_boxes(fleet):
    here = json.loads(ok(fleet.cli("start", "--json", "SLEEP 60")))
    one = start(fleet, "box1", "SLEEP 60")
    two = start(fleet, "box2", "SLEEP 60")
    listed = fleet.cli("list", "--all-hosts", "--json")
    rows = {r["id"]: r["host"] for r in json.loads(ok(listed))}
    assert rows == {here["id"]: "local", one["id"]: "box1", two["id"]: "box2"}
    assert listed.stderr == ""
    table = ok(fleet.cli("list", "--all-hosts")).splitlines()
    assert table[0].split()[:4] == ["ID", "HOST", "NAME", "STATUS"]
    assert {line.split()[1] for line in table[1:]} == {"local", "box1", "box2"}

    boxes = {b["host"]: b for b in json.loads(ok(fleet.cli("hosts", "--json")))}
    assert list(boxes) == ["local", "box1", "box2"]
    for name in ("box1", "box2"):
        box = boxes[name]
        assert box["reachable"] and box["state"] == "reachable" and box["rtt_ms"] >= 0
        assert box["protocol"] == 2 and box["watch"] is True and box["codex"].startswith("codex-cli 0.169.0") and box["jobs"] == {"running": 1}
    version = json.loads(ok(fleet.cli("--host", "box2", "version", "--json")))
    assert version["host"] == "box2" and version["jobs"] == {"running": 1}


def test_follow_a_remote_session_live(fleet):
    job = start(fleet, "box1", "STREAM 60")
    follow = Follow(fleet, "--host", "box1", "logs", "-f", job["id"])
    wait_for(lambda: follow.saw("step 2 of 60"), message="the followed session")
    assert follow.proc.poll() is None and status(fleet, "box1", job) == "running"
    assert follow.saw("› STREAM 60")
    ok(fleet.cli("--host", "box1", "kill", job["id"], "--yes"))
    code, stderr = follow.finish()
    assert code == 0, stderr
    assert follow.saw("■ interrupted")  # the end, as box1's session file recorded it

    raw = json.loads(ok(fleet.cli("--host", "box1", "logs", job["id"], "--raw", "--tail", "1")))
    assert raw["type"] in ("event_msg", "response_item")


def test_kill_on_a_box_runs_the_checks_there(fleet):
    job = start(fleet, "box1", "SLEEP 60")
    killed = fleet.cli("--host", "box1", "kill", job["id"], "--yes")
    out = ok(killed)
    assert "checks as box1 ran them" in out and "✔ start time" in out and "✔ marker" in out
    assert f"job {job['id']} on box1: killed" in out and "SIGINT" in out
    assert status(fleet, "box1", job) == "killed"
    wait_for(lambda: fleet.boxes["box1"].process(job["pid"]) is None, message="the job gone from box1")
    shown = json.loads(ok(fleet.cli("--host", "box1", "show", job["id"], "--json")))
    assert [e["detail"]["outcome"] for e in shown["history"] if e["kind"] == "kill"] == ["stopped"]

    # As a program reads it: the checks as the box ran them, and the outcome.
    other = start(fleet, "box1", "SLEEP 60")
    result = json.loads(ok(fleet.cli("--host", "box1", "kill", other["id"], "--yes", "--json")))
    assert result["outcome"] == "stopped" and result["stopped"] and result["job"]["host"] == "box1"
    assert result["identity"]["ok"] and {c["name"] for c in result["identity"]["checks"]} >= {"start time", "marker"}

    # A process that is no longer the job's is refused there, each check shown.
    execd = start(fleet, "box1", "EXEC now")
    wait_for(lambda: "sleep" in " ".join(fleet.boxes["box1"].process(execd["pid"]).cmdline()), message="the exec")
    refused = fleet.cli("--host", "box1", "kill", execd["id"], "--yes")
    assert refused.returncode == 1 and "✖ marker" in refused.stdout
    assert refused.stderr.count("\n") == 1 and "box1: refusing to kill" in refused.stderr
    assert fleet.boxes["box1"].process(execd["pid"]) is not None


def test_a_box_that_is_down(sandbox):
    # One box answers, one has no sshd any more, and one takes the connection but never says a
    # word: only its connect timeout (set in the operator's ssh configuration) ends the wait.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    fleet = make_fleet(sandbox, ["box1", "box2"], extra_hosts={
        "silent": ["HostName 127.0.0.1", f"Port {silent.getsockname()[1]}", "ConnectTimeout 2"]})
    try:
        fleet.boxes["box2"].stop_sshd()
        job = start(fleet, "box1", "SLEEP 60")
        listed = fleet.cli("list", "--all-hosts", "--json", CODEXDASH_HOSTS="box1,box2,silent")
        assert listed.returncode == 1
        assert [r["id"] for r in json.loads(listed.stdout)] == [job["id"]]
        lines = listed.stderr.splitlines()
        assert len(lines) == 2, listed.stderr
        assert lines[0].startswith("codexdash: box2: unreachable:") and "refused" in lines[0]
        assert lines[1].startswith("codexdash: silent: unreachable:") and "timed out" in lines[1]

        hosts = {b["host"]: b for b in json.loads(fleet.cli("hosts", "--json", CODEXDASH_HOSTS="box1,box2").stdout)}
        assert hosts["box1"]["reachable"] and not hosts["box2"]["reachable"] and hosts["box2"]["state"] == "unreachable"
        down = fleet.cli("--host", "box2", "list")
        assert down.returncode == 1 and down.stderr.startswith("codexdash: box2: unreachable:") and down.stderr.count("\n") == 1
    finally:
        tear_down(fleet)
        silent.close()


def test_a_box_killed_mid_follow(fleet):
    job = start(fleet, "box2", "STREAM 60")
    follow = Follow(fleet, "--host", "box2", "logs", "-f", job["id"])
    wait_for(lambda: follow.saw("step 1 of 60"), message="the followed session")
    fleet.boxes["box2"].kill()
    code, stderr = follow.finish()
    assert code == 1
    assert stderr.count("\n") == 1 and stderr.startswith("codexdash: box2: the connection was lost while following"), stderr


def test_two_boxes_whose_jobs_have_the_same_pid(fleet):
    one = start(fleet, "box1", "SLEEP 60")
    two = start(fleet, "box2", "SLEEP 60")
    # Fresh namespaces, the same steps: the same PID, as on two real machines.
    assert one["pid"] == two["pid"]
    wrong = fleet.cli("--host", "box1", "kill", two["id"], "--yes")
    assert wrong.returncode == 2 and f"box1: no job '{two['id']}'" in wrong.stderr
    ok(fleet.cli("--host", "box2", "kill", two["id"], "--yes"))
    assert status(fleet, "box2", two) == "killed"
    assert status(fleet, "box1", one) == "running"
    assert fleet.boxes["box1"].process(one["pid"]).is_running()


def test_a_box_whose_codexdash_is_too_old_or_too_new(fleet, tmp_path):
    old = tmp_path / "old-codexdash"
    old.write_text("#!/bin/sh\necho 'codexdash: unrecognized arguments: --protocol=1 (try: codexdash --help)' >&2\nexit 2\n")
    new = tmp_path / "new-codexdash"
    new.write_text("#!/bin/sh\necho 'codexdash: protocol mismatch: asked for protocol 1; codexdash 9.0 here speaks 5 to 7"
                   " (upgrade the codexdash that asked)' >&2\nexit 2\n")
    for script in (old, new):
        script.chmod(0o755)
    too_old = fleet.cli("--host", "box1", "list", CODEXDASH_REMOTE=str(old))
    assert too_old.returncode == 1
    assert "box1: its codexdash is too old" in too_old.stderr and too_old.stderr.count("\n") == 1
    too_new = fleet.cli("--host", "box1", "list", CODEXDASH_REMOTE=str(new))
    assert too_new.returncode == 1 and "box1: protocol mismatch" in too_new.stderr and "speaks 5 to 7" in too_new.stderr
    hosts = {b["host"]: b for b in json.loads(fleet.cli("hosts", "--json", CODEXDASH_REMOTE=str(old)).stdout)}
    assert hosts["box1"]["state"] == "incompatible" and "too old" in hosts["box1"]["error"]
    missing = fleet.cli("--host", "box1", "list", CODEXDASH_REMOTE="/no/such/codexdash")
    assert missing.returncode == 1 and "box1: cannot run '/no/such/codexdash' there" in missing.stderr


def watch_on(fleet, box: str):
    """`codexdash --host BOX list --json --watch` running here, its JSON lines gathered as they
    come; its stdin is a pipe held open here, as ssh holds a watch's."""
    return Watch(fleet.sandbox, "--interval", "0.2", "--heartbeat", "0.5", before=("--host", box), env=fleet.env())


def test_a_watch_over_ssh_says_each_change_and_ends_on_the_box_with_its_client(fleet):
    import psutil

    one = start(fleet, "box1", "SLEEP 60")
    box1 = fleet.boxes["box1"]
    watch = watch_on(fleet, "box1")
    wait_for(lambda: watch.status(one["id"]) == "running", timeout=30, message="the first snapshot, from box1")
    assert all(j["host"] == "box1" for j in watch.snapshots()[-1])
    (watching,) = wait_for(lambda: list(box1.commands("list", "--watch")), message="one watch on box1")
    two = start(fleet, "box1", "SLEEP 60")
    wait_for(lambda: watch.status(two["id"]) == "running", timeout=30, message="a job started on box1, said")
    ok(fleet.cli("--host", "box1", "kill", two["id"], "--yes"))
    wait_for(lambda: watch.status(two["id"]) == "killed", timeout=30, message="the job's end, said")
    beats = watch.heartbeats()
    wait_for(lambda: watch.heartbeats() >= beats + 2, timeout=30, message="heartbeats while nothing changes")
    snapshots = watch.snapshots()
    assert all(a != b for a, b in zip(snapshots, snapshots[1:]))  # a snapshot only when the jobs changed
    assert list(box1.commands("list", "--watch")) == [watching]  # the same process all along: no look is a new one
    # The ssh client goes (killed, its stdin still open here): the box's watch ends with it.
    (client,) = [p for p in psutil.Process(watch.proc.pid).children() if p.name() == "ssh"]
    client.kill()
    wait_for(lambda: not box1.commands("list", "--watch"), timeout=30, message="the watch on box1 gone with its client")
    assert watch.proc.wait(timeout=30) == 1  # the reader here says the watch ended
    # This side closes (stdin ends): its ssh client and the box's watch go, quietly.
    again = watch_on(fleet, "box1")
    wait_for(lambda: again.snapshots(), timeout=30, message="a second watch")
    wait_for(lambda: box1.commands("list", "--watch"), message="the second watch on box1")
    again.proc.stdin.close()
    assert again.proc.wait(timeout=30) == 0 and again.proc.stderr.read() == ""
    wait_for(lambda: not box1.commands("list", "--watch"), timeout=30, message="the second watch on box1 gone")
    assert status(fleet, "box1", one) == "running"  # the watched job lives on


def test_a_box_too_old_to_watch_refuses_it_and_still_lists(fleet, tmp_path):
    from codexdash.boxes import ProtocolMismatch
    from codexdash.remote import SshBox

    old = old_codexdash(tmp_path)
    one = start(fleet, "box1", "SLEEP 60")
    refused = fleet.cli("--host", "box1", "list", "--json", "--watch", CODEXDASH_REMOTE=str(old))
    assert refused.returncode == 1 and "box1: protocol mismatch: asked for protocol 2" in refused.stderr
    (row,) = json.loads(ok(fleet.cli("--host", "box1", "list", "--json", CODEXDASH_REMOTE=str(old))))
    assert row["id"] == one["id"]
    hosts = {b["host"]: b for b in json.loads(fleet.cli("hosts", "--json", CODEXDASH_REMOTE=str(old)).stdout)}
    assert hosts["box1"]["protocol"] == 1 and hosts["box1"]["watch"] is False and hosts["box1"]["state"] == "reachable"
    settings = fleet.sandbox.settings.with_overrides(ssh_command=("ssh", "-F", str(fleet.ssh_config)), remote_command=str(old))
    with pytest.raises(ProtocolMismatch):
        list(SshBox("box1", settings).watch())


def old_codexdash(tmp_path):
    """A box's codexdash of protocol 1: it refuses protocol 2 as such a codexdash does, and
    answers the rest (the real one, asked for protocol 1 under the version it would say)."""
    old = tmp_path / "codexdash-protocol-1"
    old.write_text(
        "#!/bin/sh\n"
        'if [ "$1" != --protocol=1 ]; then\n'
        '  echo "codexdash: protocol mismatch: asked for protocol ${1#--protocol=}; codexdash 0.9 here speaks 1'
        ' (upgrade codexdash on this box)" >&2\n'
        "  exit 2\n"
        "fi\n"
        'if [ "$2" = version ]; then\n'
        "  codexdash \"$@\" | sed 's/\"protocol\": [0-9]*/\"protocol\": 1/'\n"
        "  exit\n"
        "fi\n"
        'exec codexdash "$@"\n')
    old.chmod(0o755)
    return old
