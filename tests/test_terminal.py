"""The terminal socket on the live dashboard (daphne in its own process) and the real lab
daemons: bad input and faults, each with what the page is told and what LXD is left with."""

from __future__ import annotations

import contextlib
import json
import secrets
import time

import pytest
from websockets.exceptions import InvalidStatus

from hosts.domain.terminal_window import OUTPUT_WINDOW
from hosts.lxd.exec import COALESCE_BYTES
from tests.support import DashboardSession, an_instance, mkdir, push
from tests.terminal_helpers import TerminalClient, running_execs

PASSWORD = "terminal-test-" + secrets.token_hex(4)


@pytest.fixture(scope="module")
def running(lab):
    with an_instance(lab.d1) as name:
        yield name


@pytest.fixture
def admin(live_hosts):
    return DashboardSession(live_hosts.url, live_hosts.username, live_hosts.password)


@pytest.fixture
def terminal():
    """Open a terminal client as a logged-in session; every one is closed after the test."""
    opened: list[TerminalClient] = []

    def open_terminal(live, session, name: str, host: str = "lab1", **kwargs) -> TerminalClient:
        cookies = session.cookies if hasattr(session, "cookies") else session.http.cookies
        opened.append(TerminalClient(live.url, cookies, host, name, **kwargs))
        return opened[-1]

    yield open_terminal
    for client in opened:
        client.close()


def until_audited(live, timeout: float = 30, **filters) -> list[dict]:
    """The audit entries matching `filters`, once there are any (the end of a session is
    recorded just after LXD's operation ends)."""
    deadline = time.monotonic() + timeout
    while not (entries := live.audit_entries(**filters)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return entries


def until_no_exec(
    daemon, name: str, timeout: float = 15, description: str = "Executing command"
) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := running_execs(daemon, name, description)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_a_stopped_instance_is_refused_with_a_clear_message(live_hosts, lab, admin, terminal):
    with an_instance(lab.d1, running=False) as name:
        client = terminal(live_hosts, admin, name)
        reply = client.start()
        assert reply == {
            "type": "error",
            "status": 400,
            "message": f"{name} on lab1: Instance is not running",
        }
        assert client.until_closed() == 4400  # no half-open socket
        assert running_execs(lab.d1, name) == []
        [entry] = live_hosts.audit_entries(action="terminal.start", target__startswith=name)
        assert entry["outcome"] == "failed" and "Instance is not running" in entry["error"]


def test_a_frozen_instance_is_refused_with_a_clear_message(live_hosts, lab, admin, terminal):
    with an_instance(lab.d1) as name:
        lab.d1.lxc("pause", name)
        client = terminal(live_hosts, admin, name)
        reply = client.start()
        assert reply["type"] == "error" and reply["message"] == f"{name} on lab1: Instance is frozen"
        assert client.until_closed() == 4400
        lab.d1.lxc("start", name)  # unfreezes
        assert running_execs(lab.d1, name) == []


def test_command_not_found_ends_with_lxds_error_and_exit_code(live_hosts, lab, admin, running, terminal):
    client = terminal(live_hosts, admin, running)
    assert client.start(command="/no/such/command")["type"] == "started"
    assert client.until_message(lambda m: m["type"] == "exit") == {
        "type": "exit",
        "code": 127,
        "message": "Command not found",
    }
    assert client.until_closed() == 1000
    entry = live_hosts.audit_entries(action="terminal.end", target__startswith=f"{running}: /no/such")[0]
    assert entry["outcome"] == "failed" and entry["error"] == "Command not found (exit code 127)"


def test_the_browser_going_away_mid_yes_ends_the_command(live_hosts, lab, admin, running, terminal):
    client = terminal(live_hosts, admin, running)
    client.start(command="yes")
    client.until_output(r"(y\r\n){1000}")
    assert running_execs(lab.d1, running)  # the command runs while the browser reads
    client.ws.close()
    assert until_no_exec(lab.d1, running) == []
    entry = until_audited(live_hosts, action="terminal.end", target__startswith=f"{running}: yes")[0]
    assert entry["error"] == "The browser closed the terminal. (exit code 137)"


def test_a_stalled_browser_holds_the_command_back(live_hosts, lab, admin, running, terminal):
    """Without acknowledgements the relay stops at the window; once acknowledged, it goes on.
    The browser then vanishes while stalled: nothing is left running."""
    client = terminal(live_hosts, admin, running, ack=False)
    client.start(command="yes")
    client.until(lambda: len(client.output) >= OUTPUT_WINDOW, what="a window of output")
    # Whatever `yes` produces meanwhile, nothing more than the window arrives while unacknowledged.
    held = len(client.output)
    quiet_until = time.monotonic() + 2
    while time.monotonic() < quiet_until:
        with contextlib.suppress(TimeoutError):
            client._read_one(0.2)
    assert OUTPUT_WINDOW <= len(client.output) <= OUTPUT_WINDOW + COALESCE_BYTES, (held, len(client.output))
    held = len(client.output)
    client.ws.send(json.dumps({"type": "ack", "written": held}))
    client.until(lambda: len(client.output) >= held + OUTPUT_WINDOW // 2, what="output after the ack")
    client.ws.close()
    assert until_no_exec(lab.d1, running) == []


def test_input_the_command_does_not_read_holds_nothing_back(live_hosts, lab, admin, running, terminal):
    """`yes` reads no input: what the browser sends waits towards LXD (the terminal is raw, so
    the kernel neither echoes nor drops it), and meanwhile the browser's acknowledgements must
    still let the output through.  Then the command reads its input and exits.  (Killing a
    command while LXD 5.0.2 waits to write input to it leaves LXD's operation running for good,
    so this one reads it all before it ends.)"""
    lab.d1.lxc("exec", running, "--", "rm", "-f", "/tmp/drain")
    size = 4 * 1024 * 1024
    command = (
        "stty raw -echo; yes & while [ ! -e /tmp/drain ]; do sleep 0.1; done; kill $!; "
        f"head -c {size} >/dev/null; echo; echo drained; head -c 1 >/dev/null"
    )
    client = terminal(live_hosts, admin, running, ack=False)
    client.start(command=f"sh -c '{command}'")
    client.until(lambda: len(client.output) >= OUTPUT_WINDOW, what="a window of output")
    for _ in range(size // 65536):
        client.send(b"z" * 65536)  # nothing reads it for now: LXD stops taking it
    written = len(client.output)
    client.ws.send(json.dumps({"type": "ack", "written": written}))
    client.until(lambda: len(client.output) >= written + OUTPUT_WINDOW // 2, what="output after the ack")
    lab.d1.lxc("exec", running, "--", "touch", "/tmp/drain")
    client.ack = True  # from now on the page reads as usual
    # The command waits for one more byte after it said so: LXD 5.0.2 may drop what a command
    # writes just before it exits (its PTY reader races the exit), which is not ours to test.
    client.until(lambda: b"drained" in client.output[-100:], what="the input drained")
    client.send(b"z")
    assert client.until_message(lambda m: m["type"] == "exit")["code"] == 0
    assert until_no_exec(lab.d1, running) == []


def test_a_session_ends_and_is_audited_when_lxd_stops_reading(live_hosts, lab, admin, terminal):
    """Input piles up for a command that never reads it, then the browser goes away: closing
    LXD's sockets must not wait for that input to drain."""
    # Its own container: LXD 5.0.2 keeps this exec's operation running for good (its write of
    # the input into the terminal never returns once the command is killed).
    with an_instance(lab.d1) as name:
        client = terminal(live_hosts, admin, name)
        client.start(command="sh -c 'stty raw -echo; sleep 1000'")
        for _ in range(64):
            client.send(b"z" * 65536)
        client.ws.close()
        [entry] = until_audited(live_hosts, action="terminal.end", target__startswith=f"{name}: sh")
        assert entry["error"].startswith("The browser closed the terminal.")


def test_a_viewer_is_refused_and_audited(live_hosts, lab, running, terminal):
    name = "viewer-" + secrets.token_hex(3)
    live_hosts.create_users([name], "viewer", PASSWORD)
    client = terminal(live_hosts, DashboardSession(live_hosts.url, name, PASSWORD), running)
    reply = client.until_message(lambda m: True)
    assert reply == {
        "type": "error",
        "status": 403,
        "message": "A terminal needs the operator role: a shell is root in the instance.",
    }
    assert client.until_closed() == 4403
    [entry] = live_hosts.audit_entries(username=name)
    assert (entry["action"], entry["outcome"], entry["host_name"]) == ("terminal.start", "refused", "lab1")
    assert until_no_exec(lab.d1, running) == []


def test_absurd_sizes_are_clamped(live_hosts, admin, running, terminal):
    client = terminal(live_hosts, admin, running)
    client.start(cols=10**9, rows=0)
    client.send("stty size\r")
    client.until_output(r"\r\n2 500\r\n")
    client.resize(-7, 2**70)
    client.send("stty size\r")
    client.until_output(r"\r\n200 2\r\n")
    client.resize("wide", None)  # not numbers: refused, the session goes on
    client.until_message(lambda m: m["type"] == "notice" and "whole numbers" in m["message"])
    client.send("echo still-$((1+1))\r")
    client.until_output(r"still-2")
    client.close()


def test_user_group_and_directory(live_hosts, lab, admin, running, terminal):
    push(
        lab.d1,
        running,
        "/etc/passwd",
        b"root:x:0:0:root:/root:/bin/sh\nalice:x:1234:1235::/home/alice:/bin/sh\n",
    )
    push(lab.d1, running, "/etc/group", b"root:x:0:\nalice:x:1235:\nstaff:x:50:\n")
    mkdir(lab.d1, running, "/home")
    mkdir(lab.d1, running, "/home/alice")
    client = terminal(live_hosts, admin, running)
    assert client.start(command="sh", user="alice")["target"] == (
        f"{running}: sh (uid 1234, gid 1235, cwd /home/alice)"
    )
    client.send('echo "$(id -u):$(id -g):$(pwd):$HOME:$TERM:$LANG"\r')
    client.until_output(r"1234:1235:/home/alice:/home/alice:xterm-256color:C.UTF-8")
    client.close()
    client = terminal(live_hosts, admin, running)
    client.start(command="sh", user="1000", group="staff", cwd="/tmp/../tmp")
    client.send('echo "$(id -u):$(id -g):$(pwd)"\r')
    client.until_output(r"1000:50:/tmp")
    client.close()
    for fields, message in (
        ({"user": "mallory"}, "There is no user 'mallory' in the instance's /etc/passwd."),
        ({"group": "wheel"}, "There is no group 'wheel' in the instance's /etc/group."),
        ({"cwd": "tmp"}, "The working directory must be an absolute path."),
        ({"command": "sh -c 'unclosed"}, "The command cannot be read: No closing quotation."),
    ):
        client = terminal(live_hosts, admin, running)
        reply = client.start(**fields)
        assert reply["type"] == "error" and reply["message"].endswith(message), reply
        assert client.until_closed() == 4400


def test_no_secret_reaches_the_browser_or_the_log(live_hosts, lab, admin, running, terminal):
    before = set(running_execs(lab.d1, running))
    client = terminal(live_hosts, admin, running)
    client.start(command="sh")
    [op_id] = set(running_execs(lab.d1, running)) - before
    fds = lab.d1.admin().operation(op_id).metadata["fds"]
    assert set(fds) == {"0", "control"}
    client.send("echo done\r")
    client.until_output(r"\r\ndone\r\n")
    client.send("exit\r")
    client.until_closed()
    seen = json.dumps(client.messages) + bytes(client.output).decode("utf-8", "replace")
    log = (live_hosts.tmp / "daphne.log").read_text()
    for secret in fds.values():
        assert secret not in seen and secret not in log
    assert op_id not in seen


def test_logging_out_closes_the_terminal(live_hosts, lab, running, terminal):
    name = "operator-" + secrets.token_hex(3)
    live_hosts.create_users([name], "operator", PASSWORD)
    session = DashboardSession(live_hosts.url, name, PASSWORD)
    client = terminal(live_hosts, session, running)
    client.start(command="sh")
    client.send("echo hello\r")
    client.until_output(r"\r\nhello\r\n")
    assert session.post("/accounts/logout/").status_code == 302
    reply = client.until_message(lambda m: m["type"] == "exit")
    assert reply["message"] == "Your login ended: the terminal is closed."
    assert client.until_closed() == 4401
    assert until_no_exec(lab.d1, running) == []
    [entry] = until_audited(live_hosts, username=name, action="terminal.end")
    assert entry["error"] == "Your login ended: the terminal is closed. (exit code 137)"


def test_the_console_shows_its_log_then_what_comes(live_hosts, lab, admin, terminal):
    with an_instance(lab.d1) as name:
        lab.d1.lxc("exec", name, "--", "sh", "-c", "echo before-attach > /dev/console")
        client = terminal(live_hosts, admin, name)
        assert client.start(mode="console") == {
            "type": "started",
            "mode": "console",
            "target": f"{name}: console",
        }
        client.until_output(r"before-attach")  # the log buffer, shown before attaching
        client.until_message(lambda m: m == {"type": "notice", "message": "Attached to the console."})
        # LXD attaches a moment after the sockets connect: write until a line comes through.
        for attempt in range(30):
            lab.d1.lxc("exec", name, "--", "sh", "-c", f"echo live-{attempt} > /dev/console")
            try:
                client.until_output(r"live-\d+", timeout=1)
                break
            except AssertionError:
                continue
        client.until_output(r"live-\d+", timeout=1)
        assert running_execs(lab.d1, name, "Showing console")
        client.close()
        assert until_no_exec(lab.d1, name, description="Showing console") == []
        [entry] = until_audited(live_hosts, action="terminal.end", target=f"{name}: console")
        assert entry["error"] == "The browser closed the terminal."


def test_another_origin_cannot_open_a_terminal(live_hosts, admin, running, terminal):
    with pytest.raises(InvalidStatus) as refused:
        terminal(live_hosts, admin, running, origin="http://127.0.0.1:31337")
    assert refused.value.response.status_code == 403
