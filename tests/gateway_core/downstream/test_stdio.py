"""The stdio transport on its own: a real child process, its stderr, its death, and its whole group stopped."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import anyio
import pytest

from gateway_core.downstream.base import ConnectError
from gateway_core.downstream.stderr import StderrBuffer
from gateway_core.downstream.stdio import QUICK_STOP, StdioCommand, open_stdio

pytestmark = pytest.mark.anyio

WAIT_S = 10.0


def python(code: str) -> StdioCommand:
    return StdioCommand(sys.executable, ("-c", code))


async def test_stderr_is_captured_line_by_line_and_a_death_while_idle_is_noticed_with_its_exit_code():
    code = "import sys; sys.stderr.write('starting\\nready\\n'); sys.stderr.flush(); sys.exit(3)"
    lines: list[str] = []
    buffer = StderrBuffer(lines.append)
    async with open_stdio(python(code), stderr=buffer) as connection:
        # The child exits with 3 on its own while no request is in flight.
        with anyio.fail_after(WAIT_S):
            await connection.lost.wait()
        reason = connection.loss_reason()

    assert reason == "the server process exited with code 3"
    assert lines[:2] == ["starting", "ready"]


async def test_messages_of_any_size_arrive_whole_and_in_order_however_the_pipe_cuts_them():
    # One write: a small message, one of 20 MiB, a small one; the pipe hands them over in 64 KiB pieces.
    code = (
        "import json, sys\n"
        "def note(text): return json.dumps({'jsonrpc': '2.0', 'method': 'n', 'params': {'text': text}}) + '\\n'\n"
        "sys.stdout.write(note('first') + note('x' * 20 * 1024 * 1024) + note('last')); sys.stdout.flush()\n"
        "sys.stdin.read()\n"
    )
    async with open_stdio(python(code), stderr=StderrBuffer(None)) as connection:
        read, _ = connection.streams
        with anyio.fail_after(WAIT_S):
            texts = [(await read.receive()).message.params["text"] for _ in range(3)]  # type: ignore[union-attr]

    assert texts == ["first", "x" * 20 * 1024 * 1024, "last"]


async def test_a_command_that_does_not_exist_is_a_connect_error_that_names_it():
    with pytest.raises(ConnectError, match="command '/nonexistent/server' not found"):
        async with open_stdio(StdioCommand("/nonexistent/server"), stderr=StderrBuffer(None)):
            pass


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="POSIX process groups")
def tool_in(folder, name: str, script: str):
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return path


async def test_a_bare_command_is_found_on_the_launch_environments_path_which_the_server_also_gets(tmp_path):
    bin_dir = tmp_path / "tools"
    tool_in(bin_dir, "my-mcp-server", 'echo "PATH=$PATH NVM_DIR=$NVM_DIR" >&2')
    lines: list[str] = []
    spec = StdioCommand("my-mcp-server", launch_env={"PATH": f"{bin_dir}:/usr/bin:/bin", "NVM_DIR": "/n"})

    async with open_stdio(spec, stderr=StderrBuffer(lines.append)) as connection:
        with anyio.fail_after(WAIT_S):
            await connection.lost.wait()

    assert lines == [f"PATH={bin_dir}:/usr/bin:/bin NVM_DIR=/n"]


async def test_the_entrys_own_path_wins_over_the_launch_environment_and_a_miss_says_where_it_looked(tmp_path):
    tool_in(tmp_path / "tools", "npx", "exit 0")
    spec = StdioCommand("npx", env={"PATH": "/nowhere"}, launch_env={"PATH": str(tmp_path / "tools")})

    with pytest.raises(ConnectError) as caught:
        async with open_stdio(spec, stderr=StderrBuffer(None)):
            pass

    assert str(caught.value) == (
        "command 'npx' not found (searched: /nowhere). "
        "Node.js provides npx; install it or set the full path in the server's command"
    )


async def test_a_relative_command_is_started_from_the_entrys_working_directory(tmp_path):
    tool_in(tmp_path / "bin", "serve", "pwd >&2")
    lines: list[str] = []

    async with open_stdio(StdioCommand("./bin/serve", cwd=str(tmp_path)), stderr=StderrBuffer(lines.append)) as c:
        with anyio.fail_after(WAIT_S):
            await c.lost.wait()

    assert lines == [str(tmp_path)]


async def test_a_script_whose_interpreter_is_missing_says_so_rather_than_not_found(tmp_path):
    script = tmp_path / "serve"
    script.write_text("#!/nonexistent/node\n")
    script.chmod(0o755)

    with pytest.raises(ConnectError, match=r"the interpreter on its first line \(#!\) was not found"):
        async with open_stdio(StdioCommand(str(script)), stderr=StderrBuffer(None)):
            pass


async def test_a_missing_working_directory_is_named_before_the_command(tmp_path):
    with pytest.raises(ConnectError, match="working directory .* does not exist"):
        async with open_stdio(StdioCommand("./serve", cwd=str(tmp_path / "gone")), stderr=StderrBuffer(None)):
            pass


async def test_closing_ends_the_server_and_the_children_it_left_behind_quickly_when_asked(tmp_path):
    pid_file = tmp_path / "child.pid"
    code = (
        "import subprocess, sys, signal\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a server that ignores SIGTERM\n"
        f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "sys.stderr.write('up\\n'); sys.stderr.flush()\n"
        "import time; time.sleep(600)\n"
    )
    lines: list[str] = []
    up = anyio.Event()

    def on_line(line: str) -> None:
        lines.append(line)
        up.set()

    started = time.monotonic()
    async with open_stdio(python(code), stderr=StderrBuffer(on_line), stop_times=lambda: QUICK_STOP):
        with anyio.fail_after(WAIT_S):
            await up.wait()
        child = int(pid_file.read_text())
        closing = time.monotonic()
    closed_in = time.monotonic() - closing

    assert not _alive(child)
    assert closed_in < QUICK_STOP.grace_s + QUICK_STOP.kill_s + 2.0, (closed_in, time.monotonic() - started)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _guards() -> list[tuple[int, str]]:
    """This process's children that are guards, with their state ("Z" for an unreaped zombie)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == os.getpid() and (b"while read -r _" in cmdline or state == "Z"):
            found.append((int(entry), state))
    return found


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads /proc")
async def test_a_running_server_has_one_guard_and_closing_it_ends_and_reaps_the_guard():
    before = _guards()
    async with open_stdio(python("import time; time.sleep(600)"), stderr=StderrBuffer(lambda _: None)) as _:
        during = [guard for guard in _guards() if guard not in before]
    after = [guard for guard in _guards() if guard not in before]

    assert len(during) == 1 and during[0][1] != "Z", during
    assert after == []
