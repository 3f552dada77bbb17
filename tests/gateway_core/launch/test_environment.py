"""Which environment stdio servers start with: the rule, the login shell's, and the fallback folders."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import pytest

from gateway_core.launch.environment import (
    LaunchMode,
    PathSource,
    Surroundings,
    decide_source,
    read_mode,
    resolve_launch_environment,
)
from gateway_core.launch.fallback import Folders, extend_path, fallback_folders
from gateway_core.launch.login_shell import ShellOutput

DESKTOP_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/Users/ada", "SHELL": "/bin/zsh", "SECRET_TOKEN": "s3cret"}


def shell_printing(env: Mapping[str, str]):
    def run(argv: Sequence[str], given: Mapping[str, str], timeout_s: float, end: bytes) -> ShellOutput:
        body = b"\0".join(f"{k}={v}".encode() for k, v in env.items())
        return ShellOutput(b"noise" + end + body + b"\0" + end)

    return run


def broken_shell(argv: Sequence[str], given: Mapping[str, str], timeout_s: float, end: bytes) -> ShellOutput:
    return ShellOutput(b"", timed_out=True)


def folders_that_exist(existing: Iterable[str], listing: Mapping[str, list[str]] | None = None) -> Folders:
    present = set(existing)
    return Folders(present.__contains__, lambda path: (listing or {})[path])


def desktop(**overrides: object) -> Surroundings:
    settings: dict[str, object] = {
        "environ": DESKTOP_ENV,
        "windows": False,
        "has_terminal": lambda: False,
        "runner": shell_printing({"PATH": "/opt/homebrew/bin:/usr/bin:/bin", "NVM_DIR": "/Users/ada/.nvm"}),
        "folders": folders_that_exist([]),
    }
    return Surroundings(**(settings | overrides))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mode", "gui", "windows", "terminal", "reads_shell", "why"),
    [
        (LaunchMode.INHERIT, True, False, False, False, "TOOLGATE_LAUNCH_ENV=inherit"),
        (LaunchMode.LOGIN_SHELL, False, False, True, True, "TOOLGATE_LAUNCH_ENV=login-shell"),
        (LaunchMode.AUTO, True, True, False, False, "on Windows"),
        (LaunchMode.AUTO, False, False, False, False, "toolgate serve"),
        (LaunchMode.AUTO, True, False, True, False, "started from a terminal"),
        (LaunchMode.AUTO, True, False, False, True, "desktop launch"),
    ],
)
def test_the_login_shell_is_read_only_for_a_desktop_launch_of_the_tray_app_unless_told_otherwise(
    mode: LaunchMode, gui: bool, windows: bool, terminal: bool, reads_shell: bool, why: str
):
    decided = decide_source(mode, gui=gui, windows=windows, has_terminal=terminal)

    assert decided[0] is reads_shell
    assert why in decided[1]


def test_an_unknown_mode_value_falls_back_to_auto_with_a_warning():
    assert read_mode({"TOOLGATE_LAUNCH_ENV": "Login-Shell"}) == (LaunchMode.LOGIN_SHELL, None)
    mode, warning = read_mode({"TOOLGATE_LAUNCH_ENV": "always"})
    assert mode is LaunchMode.AUTO
    assert warning is not None and "'always'" in warning


def test_a_desktop_launch_gives_servers_the_login_shells_path_and_version_manager_variables_only():
    launch = resolve_launch_environment(gui=True, around=desktop())

    assert launch.source is PathSource.LOGIN_SHELL
    assert launch.variables == {"PATH": "/opt/homebrew/bin:/usr/bin:/bin", "NVM_DIR": "/Users/ada/.nvm"}
    assert "read from /bin/zsh" in launch.why


def test_when_the_shell_cannot_be_read_the_well_known_folders_that_exist_are_added_after_the_own_path():
    folders = folders_that_exist(["/opt/homebrew/bin", "/Users/ada/.local/bin", "/Users/ada/.cargo/bin"])

    launch = resolve_launch_environment(gui=True, around=desktop(runner=broken_shell, folders=folders))

    assert launch.source is PathSource.FALLBACK
    assert launch.path == "/usr/bin:/bin:/opt/homebrew/bin:/Users/ada/.local/bin:/Users/ada/.cargo/bin"
    assert launch.added == ("/opt/homebrew/bin", "/Users/ada/.local/bin", "/Users/ada/.cargo/bin")
    assert "did not finish within 5 s" in launch.why
    assert "SECRET_TOKEN" not in launch.variables


def test_started_from_a_terminal_servers_get_toolgates_own_path_and_no_shell_is_run():
    def must_not_run(*_: object) -> ShellOutput:
        raise AssertionError("the login shell was read")

    launch = resolve_launch_environment(gui=True, around=desktop(has_terminal=lambda: True, runner=must_not_run))

    assert launch.source is PathSource.INHERITED
    assert launch.variables == {"PATH": "/usr/bin:/bin"}


def test_the_newest_nvm_node_is_among_the_fallback_folders():
    versions = "/home/ada/.nvm/versions/node"
    folders = folders_that_exist(
        [versions, f"{versions}/v20.11.1/bin", "/usr/local/bin"],
        {versions: ["v9.0.0", "v20.11.1", "v18.19.0", "system"]},
    )

    assert fallback_folders("/home/ada", folders) == ["/usr/local/bin", f"{versions}/v20.11.1/bin"]


def test_extending_a_path_keeps_its_order_and_adds_each_folder_once():
    assert extend_path("/usr/bin::/bin", ["/bin", "/opt/x", "/opt/x"]) == "/usr/bin:/bin:/opt/x"
