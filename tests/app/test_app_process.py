"""`toolgate` as a person starts it: a real process, offscreen or with no display at all."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2

from tests.fakes.launch import LineReader, fake_command
from tests.integration.harness import agent_client, text_of

STOP_TIMEOUT_S = 20.0


def toolgate_app(*args: str) -> list[str]:
    return [sys.executable, "-m", "app", *args]


def write_config(home: Path, *, servers: bool = True, agents: dict[str, object] | None = None) -> None:
    command, args = fake_command()
    config = {
        "gateway": {"port": 0},
        "servers": {"fake": {"command": command, "args": args}} if servers else {},
        "agents": agents or {},
    }
    (home / "config.json").write_text(json.dumps(config))


def environment(**changes: str | None) -> dict[str, str]:
    env = {**os.environ}
    for name, value in changes.items():
        env.pop(name, None)
        if value is not None:
            env[name] = value
    return env


def stop(process: subprocess.Popen[str]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(STOP_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(STOP_TIMEOUT_S)


@contextmanager
def serving_headless(env: dict[str, str]) -> Iterator[LineReader]:
    """The app started with ``env``, once it serves headless and /health answers; yields its stderr, then stops it."""
    process = subprocess.Popen(
        toolgate_app(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        errors = LineReader(process.stderr)
        url = LineReader(process.stdout).wait_for("Toolgate is serving MCP at").split()[-1]
        assert httpx2.get(url.removesuffix("/mcp") + "/health", timeout=10).status_code == 200
        yield errors
    finally:
        assert stop(process) == 0


def test_without_a_display_toolgate_says_so_in_one_line_and_serves_headless(toolgate_home: Path):
    write_config(toolgate_home)
    with serving_headless(environment(DISPLAY=None, WAYLAND_DISPLAY=None, QT_QPA_PLATFORM=None)) as errors:
        first = errors.wait_for("No display found")
        assert first == errors.lines[0]
        assert "running the gateway headless" in first


def test_the_app_starts_offscreen_serves_and_a_second_launch_brings_it_to_the_front(toolgate_home: Path):
    write_config(toolgate_home)
    env = environment(QT_QPA_PLATFORM="offscreen")
    process = subprocess.Popen(
        toolgate_app(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env
    )
    try:
        assert process.stderr is not None
        log = LineReader(process.stderr)
        url = log.wait_for("Toolgate is ready at").split(" at ")[1].split()[0]
        health = httpx2.get(url.removesuffix("/mcp") + "/health", timeout=10)
        assert health.status_code == 200
        second = subprocess.run(toolgate_app(), capture_output=True, text=True, env=env, timeout=60)
        assert second.returncode == 0
        assert "already running" in second.stderr
        log.wait_for("bringing its window to the front")
    finally:
        assert stop(process) == 0
    log.wait_for("Toolgate quit")


def test_the_window_shows_before_the_gateway_and_a_quit_while_starting_ends_the_app_cleanly(toolgate_home: Path):
    write_config(toolgate_home)
    env = environment(QT_QPA_PLATFORM="offscreen")
    process = subprocess.Popen(
        toolgate_app(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env
    )
    try:
        assert process.stderr is not None
        log = LineReader(process.stderr)
        log.wait_for("Toolgate's window is shown")
        process.send_signal(signal.SIGTERM)  # while the gateway is still loading
    finally:
        assert stop(process) == 0
    lines = log.wait_closed()
    shown = next(i for i, line in enumerate(lines) if "Toolgate's window is shown" in line)
    # Logged just before the gateway is built (the window was built on it, after this, before).
    building = next(i for i, line in enumerate(lines) if "stdio servers get the PATH of" in line)
    listening = next(i for i, line in enumerate(lines) if "Toolgate is listening" in line)
    assert shown < building < listening
    assert any("Toolgate quit" in line for line in lines)
    assert [line for line in lines if any(text in line for text in UNCLEAN_QUIT)] == []


def test_an_invalid_config_never_reaches_qt_when_asked_for_the_cli(toolgate_home: Path):
    (toolgate_home / "config.json").write_text("{ not json")
    done = subprocess.run(toolgate_app("config", "check"), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "config.json" in done.stderr


# Quit crashed 2 times in 8 after busy sessions (issue 22): several quits, each after a run of calls.
QUIT_ATTEMPTS = 3
CALLS_BEFORE_QUIT = 100
# What a quit must never print, whatever its exit code.
UNCLEAN_QUIT = ("Fatal Python error", "Task was destroyed but it is pending", "Traceback (most recent call last)")


def test_the_app_quits_cleanly_after_serving_tool_calls_every_time(toolgate_home: Path):
    write_config(toolgate_home, agents={"bench": {"name": "Bench", "default": "allow"}})
    env = environment(QT_QPA_PLATFORM="offscreen")
    rotate = toolgate_app("agents", "rotate", "bench")
    token = subprocess.run(rotate, capture_output=True, text=True, env=env, timeout=60, check=True).stdout.strip()
    for attempt in range(QUIT_ATTEMPTS):
        process = subprocess.Popen(
            toolgate_app(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        try:
            assert process.stderr is not None
            log = LineReader(process.stderr)
            url = log.wait_for("Toolgate is ready at").split(" at ")[1].split()[0]

            async def call_tools(url: str = url) -> None:
                async with agent_client(url, token) as client:
                    for i in range(CALLS_BEFORE_QUIT):
                        assert text_of(await client.call_tool("fake__echo", {"text": f"call {i}"})) == f"call {i}"

            asyncio.run(call_tools())
        finally:
            assert stop(process) == 0, f"quit {attempt + 1}"
        lines = log.wait_closed()
        assert any("Toolgate quit" in line for line in lines), f"quit {attempt + 1}"
        assert [line for line in lines if any(text in line for text in UNCLEAN_QUIT)] == [], f"quit {attempt + 1}"


def test_with_a_qt_binding_that_takes_references_to_none_the_app_says_so_and_serves_without_its_window(
    toolgate_home: Path, tmp_path: Path
):
    write_config(toolgate_home, servers=False)
    defective = tmp_path / "defective-binding"
    defective.mkdir()
    (defective / "sitecustomize.py").write_text(DEFECTIVE_BINDING)
    env = environment(QT_QPA_PLATFORM="offscreen", PYTHONPATH=os.pathsep.join([str(defective), *sys.path]))
    with serving_headless(env) as errors:
        said = errors.wait_for("has a defect that crashes Toolgate's window")
        assert "PySide6-Essentials<6.12" in said and "without its window" in said


# Makes PySide6's QObject.setObjectName take a reference to None, as every void call of 6.12.0 on 3.11 does.
DEFECTIVE_BINDING = """
import ctypes
from PySide6.QtCore import QObject

_set_object_name = QObject.setObjectName
_decref = ctypes.pythonapi.Py_DecRef
_decref.argtypes = [ctypes.py_object]


def _takes_a_reference_to_none(self, name):
    _set_object_name(self, name)
    _decref(None)


QObject.setObjectName = _takes_a_reference_to_none
"""
