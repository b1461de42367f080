"""The instance page's terminal in a real browser (Playwright + chromium), relayed by the live
dashboard to the real lab daemons: lab1 = d1 over its unix socket, lab2 = d2 over HTTPS."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
from playwright.sync_api import expect

from tests.lab import ROOT
from tests.support import an_instance
from tests.terminal_helpers import running_execs

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def on_d1(lab):
    with an_instance(lab.d1) as name:
        yield name


@pytest.fixture(scope="module")
def on_d2(lab):
    with an_instance(lab.d2) as name:
        yield name


def open_terminal(page, host: str, name: str, command: str | None = None):
    page.goto(f"/hosts/{host}/instances/{name}/")
    if command is not None:
        page.fill("#terminal-form input[name=command]", command)
    page.click("#terminal-open")
    expect(page.locator("#terminal-status")).to_contain_text("Running ")


def wait_for_line(page, text: str, timeout: float = 15_000) -> None:
    """Until a row of the terminal's screen reads exactly `text`."""
    page.wait_for_function(
        """(text) => [...document.querySelectorAll('#terminal .xterm-rows > div')]
                      .some(row => row.textContent.trim() === text)""",
        arg=text,
        timeout=timeout,
    )


def type_line(page, text: str) -> None:
    page.locator("#terminal .xterm-helper-textarea").focus()
    page.keyboard.type(text)
    page.keyboard.press("Enter")


def test_type_a_command_and_see_its_output(page, live_hosts, on_d1):
    """Under the page's Content-Security-Policy (scripts from our files only): xterm.js and
    the terminal's script run without a violation."""
    page.add_init_script(
        "window.cspViolations = [];"
        "document.addEventListener('securitypolicyviolation', e => window.cspViolations.push(e.violatedDirective));"
    )
    page.goto(f"/hosts/lab1/instances/{on_d1}/")
    # busybox has no bash: the page offers /bin/sh, found with a files-API HEAD
    expect(page.locator("#terminal-form input[name=command]")).to_have_value("/bin/sh")
    open_terminal(page, "lab1", on_d1)
    type_line(page, "echo $((6*7))")
    wait_for_line(page, "42")
    assert page.evaluate("window.cspViolations") == []


def test_stty_size_follows_a_viewport_resize(page, live_hosts, on_d1):
    page.set_viewport_size({"width": 1200, "height": 900})
    open_terminal(page, "lab1", on_d1)
    panel = page.locator("#terminal-panel")
    before = (panel.get_attribute("data-rows"), panel.get_attribute("data-cols"))
    type_line(page, "stty size")
    wait_for_line(page, " ".join(before))
    page.set_viewport_size({"width": 800, "height": 600})
    page.wait_for_function(
        "(before) => { const p = document.getElementById('terminal-panel');"
        " return p.dataset.rows !== before[0] && p.dataset.cols !== before[1]; }",
        arg=list(before),
    )
    after = (panel.get_attribute("data-rows"), panel.get_attribute("data-cols"))
    type_line(page, "clear; stty size")
    wait_for_line(page, " ".join(after))


def test_exit_code_is_shown_and_audited(page, live_hosts, on_d1):
    open_terminal(page, "lab1", on_d1)
    type_line(page, "exit 3")
    expect(page.locator("#terminal-status")).to_have_text("The command exited. Exit code 3.")
    page.goto(f"/audit/?action=terminal.end&q={on_d1}")
    row = page.locator("#audit-rows tbody tr").first
    expect(row).to_contain_text("terminal.end")
    expect(row).to_contain_text(f"{on_d1}: /bin/sh (uid 0, gid 0, cwd /root)")
    expect(row).to_contain_text("exit code 3")


def test_command_not_found_shows_lxds_error_and_the_exit_code(page, live_hosts, on_d1):
    page.goto(f"/hosts/lab1/instances/{on_d1}/")
    page.fill("#terminal-form input[name=command]", "/no/such/command")
    page.click("#terminal-open")  # it starts and ends at once: no "Running" to wait for
    status = page.locator("#terminal-status")
    expect(status).to_have_text("Command not found Exit code 127.")
    wait_for_line(page, "[Command not found Exit code 127.]")


def test_two_tabs_on_two_hosts_at_once(page, live_hosts, on_d1, on_d2):
    other = page.context.new_page()
    open_terminal(page, "lab1", on_d1)
    open_terminal(other, "lab2", on_d2)
    type_line(page, "echo one-$((40+1))")
    type_line(other, "echo two-$((40+2))")
    wait_for_line(page, "one-41")
    wait_for_line(other, "two-42")
    # both still live: each answers again
    type_line(other, "hostname")
    wait_for_line(other, on_d2)
    type_line(page, "hostname")
    wait_for_line(page, on_d1)
    other.close()


def test_the_host_dies_in_the_middle_of_a_session(page, live_hosts, lab, on_d2):
    open_terminal(page, "lab2", on_d2)
    type_line(page, "echo alive")
    wait_for_line(page, "alive")
    pid = lab.d2.admin().server()[0]["environment"]["server_pid"]
    os.kill(pid, signal.SIGKILL)
    try:
        expect(page.locator("#terminal-status")).to_contain_text("The connection to lab2 broke off")
        expect(page.locator("#terminal-close")).to_be_hidden()
    finally:
        subprocess.run([str(ROOT / "bin" / "lab"), "up", "3"], check=True, capture_output=True, timeout=120)
    page.goto(f"/audit/?action=terminal.end&q={on_d2}")
    row = page.locator("#audit-rows tbody tr").first
    expect(row).to_contain_text("failed")
    expect(row).to_contain_text("broke off")
    # the host is back and the same page opens a new session on it
    open_terminal(page, "lab2", on_d2)
    type_line(page, "echo back")
    wait_for_line(page, "back")
    page.click("#terminal-close")
    page.wait_for_function("() => true")
    assert_no_exec_left(lab.d2, on_d2)


def assert_no_exec_left(daemon, name: str) -> None:
    import time

    deadline = time.monotonic() + 15
    while running_execs(daemon, name) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert running_execs(daemon, name) == []
