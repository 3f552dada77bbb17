"""The tray app on a real X11 desktop with a system tray (Xvfb + IceWM), driven with the mouse and keyboard.

Needs the packages `scripts/test` installs (xvfb, icewm, xdotool, x11-utils and Qt's xcb libraries).
Elsewhere the test is skipped; in CI a missing package fails it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from tests.fakes.launch import LineReader, fake_command
from tests.integration.harness import agent_client

TOOLS = ("Xvfb", "icewm", "xdotool", "xwininfo")
WAIT_S = 30.0
STOP_TIMEOUT_S = 20.0


def _wait(condition, what: str, timeout_s: float = WAIT_S):
    """Poll an outside program's state (the X server's windows), bounded."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)


def _x(display: str, *args: str) -> str:
    env = {**os.environ, "DISPLAY": display}
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=10).stdout


@pytest.fixture
def desktop(tmp_path: Path) -> Iterator[str]:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        message = f"the virtual desktop needs {', '.join(missing)} (scripts/test installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    xvfb_log = tmp_path / "xvfb.log"
    xvfb, display = _start_xvfb(xvfb_log)
    wm_log = tmp_path / "icewm.log"
    with wm_log.open("w") as log:
        wm = subprocess.Popen(["icewm"], env={**os.environ, "DISPLAY": display}, stdout=log, stderr=log)
    try:
        try:
            _wait(lambda: '"SystemTray"' in _x(display, "xwininfo", "-root", "-tree"), f"IceWM's tray on {display}")
        except AssertionError as exc:
            alive = "running" if xvfb.poll() is None else f"exited with {xvfb.returncode}"
            raise AssertionError(
                f"{exc}; Xvfb is {alive} and said {xvfb_log.read_text()!r}; IceWM said: {wm_log.read_text()!r}"
            ) from None
        yield display
    finally:
        for process in (wm, xvfb):
            process.terminate()
            process.wait(STOP_TIMEOUT_S)


def _start_xvfb(log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start Xvfb on a free display (it picks one and reports it); its messages go to ``log_path``."""
    read_end, write_end = os.pipe()
    with log_path.open("a") as log:
        xvfb = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
            pass_fds=(write_end,),
            stdout=log,
            stderr=log,
        )
    os.close(write_end)
    reported = bytearray()

    def read_number() -> None:
        # Up to the newline: Xvfb may write the number and the newline separately, and exits if the
        # second write finds the pipe closed.
        while not reported.endswith(b"\n") and (chunk := os.read(read_end, 16)):
            reported.extend(chunk)
        os.close(read_end)

    reader = threading.Thread(target=read_number, daemon=True)
    reader.start()
    reader.join(WAIT_S)
    assert reported.strip(), f"Xvfb did not report its display; it said {log_path.read_text()!r}"
    return xvfb, f":{reported.decode().strip()}"


def _tray_icon_centre(display: str) -> tuple[int, int] | None:
    """Where Qt's tray icon window (named after the application) is on screen."""
    for line in _x(display, "xwininfo", "-root", "-tree").splitlines():
        if '"Toolgate": (' not in line:
            continue
        match = re.search(r"(\d+)x(\d+)\+-?\d+\+-?\d+\s+\+(-?\d+)\+(-?\d+)", line)
        if match:
            width, height, x, y = map(int, match.groups())
            if 8 <= width <= 64 and 8 <= height <= 64:  # not the 1x1 helper window, not the dashboard
                return x + width // 2, y + height // 2
    return None


def _window_visible(display: str) -> bool:
    return bool(_x(display, "xdotool", "search", "--onlyvisible", "--name", "^Toolgate$").strip())


def _click(display: str, x: int, y: int, button: int) -> None:
    _x(display, "xdotool", "mousemove", str(x), str(y), "click", str(button))


def _menu_choose(display: str, icon: tuple[int, int], downs: int) -> None:
    """Open the tray menu with a right click and pick the item ``downs`` steps down with the keyboard."""
    _click(display, *icon, 3)
    _x(display, "xdotool", "sleep", "0.5", "key", *(["Down"] * downs), "Return")


async def _call(url: str, token: str) -> tuple[bool, str]:
    async with agent_client(url, token) as client:
        result = await client.call_tool("fake__echo", {"text": "hi"})
        return result.is_error, result.content[0].text


def test_the_tray_icon_opens_the_window_and_its_menu_pauses_and_resumes_agents(desktop, toolgate_home: Path):
    command, args = fake_command()
    config = {"gateway": {"port": 0}, "servers": {"fake": {"command": command, "args": args}}}
    (toolgate_home / "config.json").write_text(json.dumps(config))
    token = subprocess.run(
        [sys.executable, "-m", "app", "agents", "add", "a"], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    raw = json.loads((toolgate_home / "config.json").read_text())
    raw["agents"]["a"]["default"] = "allow"
    (toolgate_home / "config.json").write_text(json.dumps(raw))
    env = {**os.environ, "DISPLAY": desktop, "QT_QPA_PLATFORM": "xcb"}
    app = subprocess.Popen(
        [sys.executable, "-m", "app", "--background"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert app.stderr is not None
        log = LineReader(app.stderr)
        ready = log.wait_for("Toolgate is ready at")
        assert ready.endswith("(tray icon shown)")
        url = ready.split(" at ")[1].split()[0]
        icon = _wait(lambda: _tray_icon_centre(desktop), "the tray icon")
        assert not _window_visible(desktop)  # started at login: only the tray icon

        _click(desktop, *icon, 1)
        _wait(lambda: _window_visible(desktop), "the window after a left click")

        # Open Toolgate, Pending approvals (0) is disabled and skipped, then Pause all agents.
        _menu_choose(desktop, icon, downs=2)
        log.wait_for("Toolgate is paused")
        refused, message = anyio.run(_call, url, token)
        assert refused
        assert "paused" in message
        _menu_choose(desktop, icon, downs=2)  # the same item now reads Resume
        log.wait_for("Toolgate resumed")
        assert anyio.run(_call, url, token) == (False, "hi")
    finally:
        if app.poll() is None:
            app.send_signal(signal.SIGTERM)
        assert app.wait(STOP_TIMEOUT_S) == 0


def _visible_windows(display: str, pid: int) -> dict[str, str]:
    """The app's visible X windows: id → name."""
    ids = _x(display, "xdotool", "search", "--onlyvisible", "--pid", str(pid)).split()
    return {window: _x(display, "xdotool", "getwindowname", window).strip() for window in ids}


def _numbers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"-?\d+", text.split("=", 1)[-1])]


def test_the_approval_prompt_sits_inside_the_work_area_with_no_balloon_and_tab_space_answers_nothing(
    desktop, toolgate_home: Path
):
    command, args = fake_command()
    config = {"gateway": {"port": 0}, "servers": {"fake": {"command": command, "args": args}}}
    (toolgate_home / "config.json").write_text(json.dumps(config))
    token = subprocess.run(
        [sys.executable, "-m", "app", "agents", "add", "a"], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    env = {**os.environ, "DISPLAY": desktop, "QT_QPA_PLATFORM": "xcb"}
    app = subprocess.Popen(
        [sys.executable, "-m", "app", "--background"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    answer: list[tuple[bool, str]] = []
    caller: threading.Thread | None = None
    try:
        assert app.stderr is not None
        log = LineReader(app.stderr)
        url = log.wait_for("Toolgate is ready at").split(" at ")[1].split()[0]
        _wait(lambda: _tray_icon_centre(desktop), "the tray icon")
        caller = threading.Thread(target=lambda: answer.append(anyio.run(_call, url, token)), daemon=True)
        caller.start()  # the agent's default is Ask: the call waits for the prompt
        prompt = _wait(
            lambda: next(
                (w for w, name in _visible_windows(desktop, app.pid).items() if "Approval needed" in name), None
            ),
            "the approval prompt",
        )
        log.wait_for("the approval prompt is on screen")
        others = [name for window, name in _visible_windows(desktop, app.pid).items() if window != prompt]
        assert others == ["Toolgate"], f"only the tray icon besides the prompt (no balloon), not {others}"

        # The whole frame, title bar included, is inside the work area (not over the taskbar).
        x, y, width, height = _numbers(_x(desktop, "xprop", "-root", "_NET_WORKAREA"))[:4]
        left, right, top, bottom = _numbers(_x(desktop, "xprop", "-id", prompt, "_NET_FRAME_EXTENTS"))
        info = _x(desktop, "xwininfo", "-id", prompt)
        inner_x = int(re.search(r"Absolute upper-left X:\s+(-?\d+)", info).group(1))
        inner_y = int(re.search(r"Absolute upper-left Y:\s+(-?\d+)", info).group(1))
        inner_w = int(re.search(r"Width:\s+(\d+)", info).group(1))
        inner_h = int(re.search(r"Height:\s+(\d+)", info).group(1))
        assert inner_x - left >= x and inner_y - top >= y
        assert inner_x + inner_w + right <= x + width and inner_y + inner_h + bottom <= y + height

        # Tab then Space answers nothing; Alt+O (Allow once) does.
        _x(desktop, "xdotool", "windowactivate", "--sync", prompt, "key", "Tab", "space")
        _x(desktop, "xdotool", "sleep", "0.5")
        assert not answer
        _x(desktop, "xdotool", "windowactivate", "--sync", prompt, "key", "alt+o")
        caller.join(WAIT_S)
        assert answer == [(False, "hi")]
    finally:
        if app.poll() is None:
            app.send_signal(signal.SIGTERM)
        assert app.wait(STOP_TIMEOUT_S) == 0
        if caller is not None:
            caller.join(WAIT_S)


def test_a_first_run_opens_the_window_whose_get_started_list_imports_the_ides_servers_from_the_keyboard(
    desktop, toolgate_home: Path, tmp_path: Path
):
    home = tmp_path / "home"
    (home / ".cursor").mkdir(parents=True)
    command, args = fake_command()
    cursor = {"mcpServers": {"fake": {"command": command, "args": args}}}
    (home / ".cursor" / "mcp.json").write_text(json.dumps(cursor))
    env = {
        **os.environ,
        "DISPLAY": desktop,
        "QT_QPA_PLATFORM": "xcb",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
    }
    config_file = toolgate_home / "config.json"
    assert not config_file.exists()  # a first run
    app = subprocess.Popen(
        [sys.executable, "-m", "app"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert app.stderr is not None
        log = LineReader(app.stderr)
        log.wait_for("Toolgate is ready at")
        window = _wait(
            lambda: _x(desktop, "xdotool", "search", "--onlyvisible", "--name", "^Toolgate$").split(),
            "the window a first run opens",
        )[0]
        # The Overview's Get started list names Cursor; its Import… (Alt+I) opens the Import pane on
        # the IDE found, whose Import (Alt+P) adds Cursor's server.
        _x(desktop, "xdotool", "windowactivate", "--sync", window, "key", "alt+i")

        def import_pressed() -> str | None:
            # Until the pane has read Cursor's file its Import does nothing; pressing it again is harmless.
            _x(desktop, "xdotool", "windowactivate", "--sync", window, "key", "alt+p")
            text = config_file.read_text()
            return text if "fake" in json.loads(text).get("servers", {}) else None

        imported = _wait(import_pressed, "Cursor's server in config.json")
        assert json.loads(imported)["servers"]["fake"]["args"] == args
    finally:
        if app.poll() is None:
            app.send_signal(signal.SIGTERM)
        assert app.wait(STOP_TIMEOUT_S) == 0
