"""The box seam without a network: settings, what ssh is told, the protocol check, this box
through the interface, and another box's answers read as untrusted (a stand-in `ssh`)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from codexdash.boxes import BoxError, FollowEnd, LocalBox, StartSpec
from codexdash.config import Settings, load_settings
from codexdash.errors import BadInput
from codexdash.remote import SshBox, control_dir
from tests.conftest import wait_for


# ---- settings ---------------------------------------------------------------------------------


def test_hosts_ssh_and_remote_command_from_the_file_and_the_environment(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('hosts = ["box1", "gpu-2"]\nssh = "ssh -F /etc/x"\nremote_command = "~/bin/codexdash"\n')
    s = load_settings(env={}, config_path=config)
    assert s.hosts == ("box1", "gpu-2") and s.ssh_command == ("ssh", "-F", "/etc/x") and s.remote_command == "~/bin/codexdash"
    s = load_settings(env={"CODEXDASH_HOSTS": " a, b ,,a", "CODEXDASH_SSH": "ssh -q", "CODEXDASH_REMOTE": "cdx"}, config_path=config)
    assert s.hosts == ("a", "b") and s.ssh_command == ("ssh", "-q") and s.remote_command == "cdx"
    assert load_settings(env={"CODEXDASH_HOSTS": ""}, config_path=config).hosts == ()
    assert load_settings(env={}, config_path=tmp_path / "none.toml") == Settings()


@pytest.mark.parametrize("hosts", ["-oProxyCommand=x", "local", "two words", "bell\x07"])
def test_a_host_that_ssh_would_misread_is_refused(hosts):
    with pytest.raises(BadInput, match="CODEXDASH_HOSTS"):
        load_settings(env={"CODEXDASH_HOSTS": hosts}, config_path=Path("/nonexistent"))


def test_host_flag_is_checked_too(sandbox):
    result = sandbox.cli("--host", "-oProxyCommand=touch /tmp/x", "list")
    assert result.returncode == 2 and "--host" in result.stderr and result.stderr.count("\n") == 1


# ---- what ssh is told ---------------------------------------------------------------------------


def test_ssh_is_told_only_what_is_needed(tmp_path, runtime_dir):
    if shutil.which("ssh") is None:
        pytest.skip("no OpenSSH client (Debian: openssh-client)")
    config = tmp_path / "ssh_config"
    config.write_text("Host patient\n  HostName 10.9.8.7\n  ConnectTimeout 3\n  ServerAliveInterval 5\nHost *\n  User u\n")
    settings = Settings(ssh_command=("ssh", "-F", str(config)))
    patient = SshBox("patient", settings)
    argv = patient.ssh_argv("true")
    # The user's own ssh command first (ssh keeps the first value it reads), the alias as written.
    assert argv[:3] == ["ssh", "-F", str(config)] and argv[-3:] == ["--", "patient", "true"]
    options = [argv[i + 1] for i, a in enumerate(argv) if a == "-o"]
    assert "BatchMode=yes" in options and "ControlMaster=auto" in options
    assert f"ControlPath={runtime_dir}/codexdash/ssh/%C" in options
    assert not any(o.startswith(("ConnectTimeout", "ServerAliveInterval")) for o in options)  # theirs stand
    assert patient.connect_timeout == 3
    hasty = SshBox("other", settings).ssh_argv("true")
    assert "ConnectTimeout=10" in hasty and "ServerAliveInterval=15" in hasty
    mode = stat.S_IMODE(os.stat(runtime_dir / "codexdash" / "ssh").st_mode)
    assert mode == 0o700


def test_the_command_on_the_box_is_quoted_word_by_word():
    box = SshBox("b", Settings(remote_command="~/bin/codexdash"))
    words = ["start", "-", "--cwd", "/a dir/it's", "--", "--model", "$(rm -rf ~)", "a;b"]
    line = box.command_line(words)
    assert line.startswith("~/bin/codexdash ")  # shell text: the box's shell expands ~
    assert shlex.split(line) == ["~/bin/codexdash", "--protocol=1", *words]
    # A command a later protocol brought asks for that one: an older box refuses it alone.
    watch = box.watch(all_history=True, external=False, interval=2, heartbeat=5)
    assert shlex.split(box.command_line(watch.args, needs=2)) == [
        "~/bin/codexdash", "--protocol=2", "list", "--json", "--watch", "--interval", "2", "--heartbeat", "5", "--all",
        "--no-external"]


def test_the_control_directory_must_be_private(runtime_dir, monkeypatch):
    (runtime_dir / "codexdash").mkdir(mode=0o755)
    os.chmod(runtime_dir / "codexdash", 0o755)
    with pytest.raises(BoxError, match="not a private directory"):
        control_dir()
    os.chmod(runtime_dir / "codexdash", 0o700)
    (runtime_dir / "elsewhere").mkdir(mode=0o700)
    (runtime_dir / "codexdash" / "ssh").symlink_to(runtime_dir / "elsewhere")
    with pytest.raises(BoxError, match="not a private directory"):
        control_dir()
    # A runtime directory too deep for a socket path: the one under the temporary directory.
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime_dir / ("x" * 80)))
    (runtime_dir / ("x" * 80)).mkdir()
    assert control_dir() == Path(tempfile.gettempdir()) / f"codexdash-{os.getuid()}" / "ssh"


# ---- the protocol -------------------------------------------------------------------------------


def test_a_protocol_this_codexdash_does_not_speak_is_refused_in_one_line(sandbox):
    assert sandbox.cli("--protocol=1", "list", "--json").returncode == 0
    assert sandbox.cli("--protocol=2", "list", "--json").returncode == 0  # the watch came with 2; the rest is as in 1
    newer = sandbox.cli("--protocol=3", "list", "--json")
    assert newer.returncode == 2 and newer.stderr.count("\n") == 1
    assert newer.stderr.startswith("codexdash: protocol mismatch: asked for protocol 3") and "upgrade codexdash on this box" in newer.stderr
    older = sandbox.cli("--protocol=0", "list")
    assert older.returncode == 2 and "upgrade the codexdash that asked" in older.stderr
    info = json.loads(sandbox.cli("version", "--json").stdout)
    assert info["protocol"] == 2 and info["oldest_protocol"] == 1 and info["host"] == "local"
    assert info["codex"].startswith("codex-cli")


# ---- this box through the interface --------------------------------------------------------------


def test_this_box_through_the_interface(sandbox):
    box = LocalBox(sandbox.engine)
    job = box.start(StartSpec(prompt="STREAM 30", cwd=str(sandbox.root)))
    assert job["host"] == "local" and job["status"] == "running"
    assert [j["id"] for j in box.jobs()] == [job["id"]]
    checks = box.verify(job["id"])
    assert checks["ok"] and {c["name"] for c in checks["checks"]} == {"process", "start time", "marker", "command", "user"}
    follower = box.follow(job["id"], follow=True)
    seen = []
    for item in follower:
        seen.append(item)
        if any("step 1 of 30" in getattr(i, "text", "") for i in seen):
            break
    follower.close()
    result = box.kill(job["id"])
    assert result["outcome"] == "stopped" and result["stopped"] and result["identity"]["ok"] and "SIGINT" in result["sent"]
    again = box.kill(job["id"])
    assert again["outcome"] == "refused" and not again["stopped"] and "not running" in again["error"]
    assert box.verify(job["id"]) == {"pid": job["pid"], "ok": False, "cmdline": [],
                                     "checks": [{"name": "state", "ok": False, "detail": f"job {job['id']} is killed: there is no process to check"}]}
    items = list(box.follow(job["id"], follow=False))
    assert items[-1] == FollowEnd("killed") and any(i.text.startswith("■ interrupted") for i in items[:-1])
    shown = box.show(job["id"])
    assert shown["host"] == "local" and shown["identity"] is None and [e["kind"] for e in shown["history"]].count("kill") == 2


def test_logs_and_kill_as_json_are_what_another_codexdash_reads(sandbox):
    job = sandbox.start("ECHO done")
    wait_for(lambda: json.loads(sandbox.cli("show", job.id, "--json").stdout)["status"] == "completed", message="the job's end")
    lines = [json.loads(line) for line in sandbox.cli("logs", job.id, "--json").stdout.splitlines()]
    assert lines[-1] == {"end": {"status": "completed"}}
    assert {"style": "agent", "text": "• done"} in lines
    # --host local goes through the same interface and prints what plain `logs` prints.
    assert sandbox.cli("--host", "local", "logs", job.id).stdout == sandbox.cli("logs", job.id).stdout
    asked = sandbox.cli("kill", job.id, "--json")
    assert asked.returncode == 2 and "needs --yes" in asked.stderr
    refused = sandbox.cli("kill", job.id, "--yes", "--json")
    assert refused.returncode == 1 and json.loads(refused.stdout)["outcome"] == "refused"
    assert refused.stderr.count("\n") == 1


def test_list_all_hosts_with_no_other_box_is_this_box(sandbox):
    job = sandbox.start("SLEEP 30")
    listed = sandbox.cli("list", "--all-hosts", "--json")
    assert listed.returncode == 0 and [(r["id"], r["host"]) for r in json.loads(listed.stdout)] == [(job.id, "local")]
    hosts = json.loads(sandbox.cli("hosts", "--json").stdout)
    assert [h["host"] for h in hosts] == ["local"] and hosts[0]["jobs"] == {"running": 1}


# ---- another box's answers, from a stand-in ssh -------------------------------------------------


def fake_ssh(tmp_path: Path, script: str) -> str:
    """An `ssh` that answers `-G` with nothing and runs `script` (sh) for any command."""
    path = tmp_path / "fake-ssh"
    path.write_text(f'#!/bin/sh\nfor a; do [ "$a" = -G ] && exit 0; done\n{script}\n')
    path.chmod(0o755)
    return str(path)


def test_unreachable_boxes_are_one_line_each_and_the_rest_is_listed(sandbox, tmp_path, runtime_dir):
    ssh = fake_ssh(tmp_path, 'echo "ssh: connect to host box port 22: Connection refused" >&2; exit 255')
    job = sandbox.start("SLEEP 30")
    listed = sandbox.cli("list", "--all-hosts", CODEXDASH_SSH=ssh, CODEXDASH_HOSTS="box1,gpu-2")
    assert listed.returncode == 1 and job.id in listed.stdout and "local" in listed.stdout
    assert listed.stderr.splitlines() == [
        "codexdash: box1: unreachable: ssh: connect to host box port 22: Connection refused",
        "codexdash: gpu-2: unreachable: ssh: connect to host box port 22: Connection refused",
    ]


def test_what_a_box_sends_is_made_safe_before_it_is_shown(sandbox, tmp_path, runtime_dir):
    lines = [{"style": "agent", "text": "• \x1b]52;c;evil\x07 hi"}, {"style": "\x1b[31m", "text": "odd style"},
             "not json", {"end": {"status": "completed"}}]
    answer = tmp_path / "answer"
    answer.write_text("\n".join(json.dumps(x) if isinstance(x, dict) else x for x in lines) + "\n")
    ssh = fake_ssh(tmp_path, f"cat {answer}")
    box = SshBox("b", Settings(ssh_command=(ssh,)))
    items = list(box.follow("job"))
    assert [i.text for i in items[:-1]] == ["• ^[]52;c;evil^G hi", "odd style"]
    assert items[1].style == "output" and items[-1] == FollowEnd("completed")
    shown = sandbox.cli("--host", "b", "logs", "job", CODEXDASH_SSH=ssh)
    assert shown.returncode == 0 and "\x1b" not in shown.stdout and "^[]52;c;evil^G hi" in shown.stdout
