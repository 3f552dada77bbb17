"""Smoke-test an installed or built Toolgate: the frozen shim, ``toolgate serve`` and the tray app.

    .venv/bin/python installers/smoke_test.py [--root /opt/toolgate] [--commands-from-path]

Run with the development environment's Python (it drives the gateway with the MCP SDK client and
starts the SDK fake server as the stdio server). Checks, against a temporary ``TOOLGATE_HOME``:

1. ``toolgate-shim --version`` prints the version (cold start timed, median of 10).
2. ``toolgate serve`` starts, answers ``/health``, serves a tool of a stdio server to an agent, and
   stops on SIGTERM with exit status 0; SIGKILLed, it leaves neither the server nor the server's child.
3. ``toolgate`` (the tray app, offscreen) becomes ready and quits on SIGTERM with exit status 0
   (cold start to ready timed).
4. The tray app started as a desktop launch would (no terminal, ``PATH=/usr/bin:/bin``) starts a stdio
   server whose command is only on the login shell's ``PATH`` (added by ``~/.profile``): its tool answers.
5. Where ``dbus-daemon`` and ``gnome-keyring-daemon`` are installed: with a Secret Service on the session
   bus, ``toolgate secrets set`` keeps the value in it (read back here through the Secret Service).

Exits 0 when every check passes; otherwise prints what failed and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import anyio
import httpx2
from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parents[1]
FAKE_SERVER = ROOT / "tests" / "fakes" / "fake_server.py"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0


def main() -> int:
    """Run every check; the exit status says whether they all passed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, help="the folder holding toolgate and toolgate-shim")
    parser.add_argument(
        "--commands-from-path", action="store_true", help="run `toolgate` and `toolgate-shim` from PATH"
    )
    options = parser.parse_args()
    if options.commands_from_path:
        app, shim = "toolgate", "toolgate-shim"
    elif options.root is not None:
        app, shim = str(options.root / "toolgate"), str(options.root / "toolgate-shim")
    else:
        parser.error("give --root or --commands-from-path")
    with tempfile.TemporaryDirectory(prefix="toolgate-smoke-") as home:
        # The frozen keyring looks for a backend as an installed one would (and falls back to the file).
        env = {**os.environ, "TOOLGATE_HOME": home}
        env.pop("DISPLAY", None)
        check_shim(shim, env)
        token = check_serve(app, env, Path(home))
        check_serve_killed(app, env, token)
        check_tray_app(app, {**env, "QT_QPA_PLATFORM": "offscreen"})
    with tempfile.TemporaryDirectory(prefix="toolgate-smoke-desktop-") as desktop_home:
        check_desktop_launch(app, Path(desktop_home))
    with tempfile.TemporaryDirectory(prefix="toolgate-smoke-keychain-") as keychain_home:
        check_secret_service(app, Path(keychain_home))
    say("smoke test passed")
    return 0


def say(message: str) -> None:
    """Report one line."""
    print(message, flush=True)  # noqa: T201 - a check script reports on stdout


def fail(message: str) -> None:
    """Stop with the reason the smoke test failed."""
    raise SystemExit(f"smoke test FAILED: {message}")


def check_shim(shim: str, env: dict[str, str]) -> None:
    """``toolgate-shim --version`` works; its cold start is timed."""
    times = []
    for _ in range(10):
        started = time.perf_counter()
        result = subprocess.run([shim, "--version"], capture_output=True, text=True, env=env, timeout=30)
        times.append(time.perf_counter() - started)
        if result.returncode != 0 or not result.stdout.startswith("toolgate-shim "):
            fail(f"`toolgate-shim --version` gave {result.returncode}: {result.stdout!r} {result.stderr!r}")
    say(f"ok  {result.stdout.strip()}: cold start median {statistics.median(times) * 1000:.0f} ms (of 10)")


def check_serve(app: str, env: dict[str, str], home: Path) -> str:
    """``toolgate serve`` answers /health, finds and serves a stdio server's tool and stops on SIGTERM.

    The agent finds the tool on demand: the query reads the related words and token vectors shipped
    beside the code.
    Returns the agent's token.
    """
    added = subprocess.run([app, "agents", "add", "smoke"], capture_output=True, text=True, env=env, timeout=60)
    tokens = re.findall(r"\btg_[A-Za-z0-9_-]+", added.stdout + added.stderr)
    if added.returncode != 0 or not tokens:
        fail(f"`toolgate agents add smoke` gave {added.returncode}: {added.stdout!r} {added.stderr!r}")
    config_file = home / "config.json"
    config = json.loads(config_file.read_text())
    config["servers"] = {"fake": {"command": sys.executable, "args": [str(FAKE_SERVER)]}}
    config["agents"]["smoke"]["default"] = "allow"
    config["agents"]["smoke"]["tools"] = "on_demand"
    config_file.write_text(json.dumps(config, indent=2))

    process = subprocess.Popen(
        [app, "serve", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True
    )
    try:
        url = _wait_for_line(process, r"serving MCP at (\S+)", START_TIMEOUT_S)
        base = url.removesuffix("/mcp")
        health = _get_json(f"{base}/health")
        if health.get("status") != "ok":
            fail(f"/health answered {health}")
        _wait_ready(base)
        text = anyio.run(_find_and_call_echo, url, tokens[-1])
        if text != "smoke":
            fail(f"fake__echo through the frozen gateway answered {text!r}")
        say(f"ok  toolgate serve: /health {health['version']}, a stdio server's tool found and answered at {url}")
    finally:
        _stop(process, "toolgate serve")
    return tokens[-1]


def check_serve_killed(app: str, env: dict[str, str], token: str) -> None:
    """A SIGKILLed ``toolgate serve`` leaves neither its stdio server nor the server's child running.

    The agent is the on-demand one check_serve set up, so it calls through ``execute_tool``.
    """
    sys.path.insert(0, str(ROOT))
    from tests.fakes.launch import wait_until_gone

    process = subprocess.Popen(
        [app, "serve", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True
    )
    try:
        url = _wait_for_line(process, r"serving MCP at (\S+)", START_TIMEOUT_S)
        _wait_ready(url.removesuffix("/mcp"))
        pids = anyio.run(_spawn_child, url, token)
    finally:
        process.kill()
        process.wait(STOP_TIMEOUT_S)
    left = [pid for pid in pids if not wait_until_gone(pid, STOP_TIMEOUT_S)]
    if left:
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        fail(f"after a SIGKILL of toolgate serve, processes {left} of its stdio server were still running")
    say("ok  a SIGKILLed toolgate serve left neither its stdio server nor the server's child running")


async def _spawn_child(url: str, token: str) -> list[int]:
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        async with Client(streamable_http_client(url, http_client=http), mode="legacy") as client:
            result = await client.call_tool("execute_tool", {"name": "fake__spawn_child", "arguments": {}})
    pids = result.structured_content or {}
    return [int(pids["server"]), int(pids["pid"])]


async def _find_and_call_echo(url: str, token: str) -> str:
    """An on-demand agent finds fake__echo by what it does and calls it through ``execute_tool``."""
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        async with Client(streamable_http_client(url, http_client=http), mode="legacy") as client:
            found = await client.call_tool("get_server_tools", {"query": "repeat the text back"})
            if "fake__echo" not in _tools_in(found):
                fail(f"get_server_tools did not find fake__echo: {found}")
            # Found by meaning alone (no word in common): the bundle reads the token vectors beside the code.
            found = await client.call_tool("get_server_tools", {"query": "how long is this string"})
            if "fake__measure" not in _tools_in(found):
                fail(f"get_server_tools found no tool by meaning (is token_vectors.bin.gz bundled?): {found}")
            result = await client.call_tool("execute_tool", {"name": "fake__echo", "arguments": {"text": "smoke"}})
    return getattr(result.content[0], "text", "")


def _tools_in(found: types.CallToolResult) -> list[str]:
    """The names of the definitions in get_server_tools' answer (not those named only in its note)."""
    try:
        return [tool["name"] for tool in json.loads(getattr(found.content[0], "text", ""))["tools"]]
    except (ValueError, KeyError, TypeError, IndexError):
        return []


async def _call_echo(url: str, token: str) -> str:
    """An agent with every tool listed calls fake__echo directly."""
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        async with Client(streamable_http_client(url, http_client=http), mode="legacy") as client:
            result = await client.call_tool("fake__echo", {"text": "smoke"})
    return getattr(result.content[0], "text", "")


def _wait_ready(base: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _get_json(f"{base}/ready").get("ready"):  # 503 until every server has been tried
        if time.monotonic() > deadline:
            fail(f"/ready did not turn ready within {START_TIMEOUT_S:g} s")
        time.sleep(0.2)


def _get_json(url: str) -> dict[str, object]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # our own loopback URL
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:  # /ready answers 503 with a body while servers start
        return dict(json.loads(exc.read()))


def check_tray_app(app: str, env: dict[str, str]) -> None:
    """The tray app becomes ready offscreen and quits on SIGTERM; its cold start is timed."""
    started = time.perf_counter()
    process = subprocess.Popen([app], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    try:
        _wait_for_line(process, r"Toolgate is ready at", START_TIMEOUT_S)
        ready_s = time.perf_counter() - started
        say(f"ok  the tray app (offscreen) was ready {ready_s:.2f} s after it was started")
    finally:
        _stop(process, "the tray app")


def check_desktop_launch(app: str, folder: Path) -> None:
    """Started like a desktop entry, the tray app finds a server's command on the login shell's PATH."""
    home, tools = folder / "home", folder / "home" / "tools"
    tools.mkdir(parents=True)
    command = tools / "smoke-mcp"  # only the login shell's PATH leads here
    command.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_SERVER}" "$@"\n')
    command.chmod(0o755)
    (home / ".profile").write_text('PATH="$HOME/tools:$PATH"\nexport PATH\n')
    # What a desktop session hands a program it starts: no terminal, a minimal PATH, the user's shell.
    env = {
        "HOME": str(home),
        "PATH": "/usr/bin:/bin",
        "SHELL": "/bin/bash",
        "TOOLGATE_HOME": str(folder / "toolgate"),
        "QT_QPA_PLATFORM": "offscreen",
    }
    added = subprocess.run([app, "agents", "add", "smoke"], capture_output=True, text=True, env=env, timeout=60)
    tokens = re.findall(r"\btg_[A-Za-z0-9_-]+", added.stdout + added.stderr)
    if added.returncode != 0 or not tokens:
        fail(f"`toolgate agents add smoke` gave {added.returncode}: {added.stdout!r} {added.stderr!r}")
    config_file = folder / "toolgate" / "config.json"
    config = json.loads(config_file.read_text())
    config["gateway"] = {**config.get("gateway", {}), "port": 0}
    config["servers"] = {"fake": {"command": "smoke-mcp"}}
    config["agents"]["smoke"]["default"] = "allow"
    config_file.write_text(json.dumps(config, indent=2))

    process = subprocess.Popen(
        [app], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True
    )
    try:
        url = _wait_for_line(process, r"Toolgate is ready at (\S+)", START_TIMEOUT_S)
        base = url.removesuffix("/mcp")
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _get_json(f"{base}/ready").get("ready"):  # 503 until every server has been tried
            if time.monotonic() > deadline:
                fail(f"/ready did not turn ready within {START_TIMEOUT_S:g} s")
            time.sleep(0.2)
        try:
            text = anyio.run(_call_echo, url, tokens[-1])
        except Exception as exc:  # any failure is reported with the server's state
            text = f"{type(exc).__name__}: {exc}"
        if text != "smoke":
            status = subprocess.run([app, "servers", "list"], capture_output=True, text=True, env=env, timeout=60)
            fail(f"a server found on the login shell's PATH did not answer ({text!r}); servers:\n{status.stdout}")
        say("ok  the tray app started as from the desktop found a command on the login shell's PATH")
    finally:
        _stop(process, "the tray app (desktop launch)")


def check_secret_service(app: str, folder: Path) -> None:
    """With gnome-keyring on a private session bus, the installed app keeps a secret in it."""
    if shutil.which("dbus-daemon") is None or shutil.which("gnome-keyring-daemon") is None:
        say("skip the Secret Service check: it needs dbus-daemon and gnome-keyring-daemon")
        return
    sys.path.insert(0, str(ROOT))
    import keyring.backends.SecretService

    from tests.fakes.secret_service import secret_service

    with secret_service(folder / "keyring") as service:
        env = {**os.environ, "TOOLGATE_HOME": str(folder / "toolgate"), "DBUS_SESSION_BUS_ADDRESS": service.address}
        stored = subprocess.run(
            [app, "secrets", "set", "SMOKE"], input="smoke-value\n", capture_output=True, text=True, env=env, timeout=60
        )
        said = stored.stdout + stored.stderr
        if stored.returncode != 0 or "in Secret Service" not in said:
            fail(f"`toolgate secrets set` with a Secret Service gave {stored.returncode}: {said!r}")
        os.environ["DBUS_SESSION_BUS_ADDRESS"] = service.address
        value = keyring.backends.SecretService.Keyring().get_password("toolgate", "SMOKE")
        if value != "smoke-value" or (folder / "toolgate" / "secrets.json").exists():
            fail(f"the secret is not in the Secret Service (read back {value!r})")
    say("ok  with a Secret Service on the session bus, secrets are kept in it (encrypted)")


def _wait_for_line(process: subprocess.Popen[str], pattern: str, timeout_s: float) -> str:
    """The first group of ``pattern`` in the process's output; fails if it exits or takes too long."""
    found: list[str] = []
    seen: list[str] = []
    done = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            seen.append(line.rstrip())
            match = re.search(pattern, line)
            if match and not found:
                found.append(match.group(1) if match.groups() else line)
                done.set()
        done.set()

    threading.Thread(target=read, daemon=True).start()
    done.wait(timeout_s)
    if not found:
        fail(f"no line matching {pattern!r} within {timeout_s:g} s; output:\n" + "\n".join(seen[-20:]))
    return found[0]


def _stop(process: subprocess.Popen[str], what: str) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        fail(f"{what} did not stop within {STOP_TIMEOUT_S:g} s of SIGTERM")
    if code != 0:
        fail(f"{what} exited with {code} after SIGTERM")
    say(f"ok  {what} stopped on SIGTERM (exit 0)")


if __name__ == "__main__":
    sys.exit(main())
