"""The guard ends a stdio server's process group when Toolgate dies, and only then."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from gateway_core.launch.guard import Guard, guard_script
from tests.fakes.launch import wait_until_gone

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="process groups are POSIX; Windows uses Job Objects")

WAIT_S = 15.0

# A "server" that starts a long-lived child in its group, prints the child's pid, then waits forever.
SERVER = (
    "import subprocess, sys, threading\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import threading; threading.Event().wait()'])\n"
    "print(child.pid, flush=True)\n"
    "threading.Event().wait()\n"
)
STUBBORN = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); " + SERVER.replace("\n", "; ", 1)


@contextmanager
def server_group(code: str = SERVER) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """A process group as Toolgate starts a stdio server: the leader and the pid of its child."""
    leader = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert leader.stdout is not None
        yield leader, int(leader.stdout.readline())
    finally:
        subprocess.run(["kill", "-s", "KILL", "--", f"-{leader.pid}"], check=False, capture_output=True)
        leader.wait(WAIT_S)
        assert leader.stdout is not None
        leader.stdout.close()


def test_when_toolgate_dies_the_guard_ends_the_server_and_its_child():
    with server_group() as (leader, child):
        guard = Guard.start(leader.pid)
        assert guard is not None and guard.process.stdin is not None

        guard.process.stdin.close()  # what the kernel does when Toolgate dies

        assert wait_until_gone(leader.pid, WAIT_S), "the server outlived Toolgate"
        assert wait_until_gone(child, WAIT_S), "the server's child outlived Toolgate"
        assert guard.process.wait(WAIT_S) is not None


def test_a_server_that_ignores_sigterm_is_killed_after_the_grace_period():
    with server_group(STUBBORN) as (leader, child):
        guard = Guard.start(leader.pid)
        assert guard is not None and guard.process.stdin is not None

        guard.process.stdin.close()

        assert wait_until_gone(leader.pid, WAIT_S)
        assert leader.wait(WAIT_S) == -9
        guard.process.wait(WAIT_S)


def test_ending_the_guard_on_a_normal_stop_leaves_the_group_alone():
    with server_group() as (leader, child):
        guard = Guard.start(leader.pid)
        assert guard is not None

        guard.end()

        assert guard.process.returncode is not None
        assert leader.poll() is None, "ending the guard must not end the server"
        assert not wait_until_gone(child, 0.0)


def test_the_script_names_only_the_group_it_guards():
    script = guard_script(4242, grace_s=3)

    assert "kill -s TERM -- -4242" in script and "kill -s KILL -- -4242" in script
    assert "sleep 3" in script
