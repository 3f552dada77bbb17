"""Finding a command as the person's shell would: Windows rules checked here through an injected platform."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from gateway_core.launch.batch import UnsafeBatchArgumentError
from gateway_core.launch.commands import (
    CommandKind,
    Files,
    FoundCommand,
    Launch,
    MissingCommand,
    OsName,
    Platform,
    find_command,
    plan_launch,
)


def windows(files: Iterable[str], path: str = r"C:\nodejs;C:\Windows\system32", **env: str) -> Platform:
    present = {file.lower() for file in files}  # file names on Windows are case-insensitive
    return Platform(
        OsName.NT, {"Path": path, **env}, r"C:\project", Files(lambda p: p.lower() in present, lambda _: True)
    )


def posix(files: Iterable[str], path: str = "/usr/local/bin:/usr/bin", *, executable: Iterable[str] | None = None):
    present = set(files)
    runnable = present if executable is None else set(executable)
    return Platform(
        OsName.POSIX,
        {"PATH": path, "HOME": "/home/ada"},
        "/work/project",
        Files(present.__contains__, runnable.__contains__),
    )


def test_on_windows_npx_is_found_as_the_npx_cmd_batch_file_through_pathext():
    found = find_command("npx", windows([r"C:\nodejs\npx.cmd"]))

    assert found == FoundCommand(r"C:\nodejs\npx.cmd", CommandKind.BATCH)


def test_on_windows_the_pathext_order_decides_within_a_folder_and_the_path_order_across_folders():
    both_here = windows([r"C:\nodejs\tool.cmd", r"C:\nodejs\tool.exe"])
    earlier_folder = windows([r"C:\nodejs\tool.cmd", r"C:\Windows\system32\tool.exe"])

    assert find_command("tool", both_here) == FoundCommand(r"C:\nodejs\tool.exe", CommandKind.PROGRAM)
    assert find_command("tool", earlier_folder) == FoundCommand(r"C:\nodejs\tool.cmd", CommandKind.BATCH)


def test_on_windows_a_name_with_its_extension_and_a_custom_pathext_are_honoured():
    platform = windows([r"C:\nodejs\npx.cmd", r"C:\nodejs\run.ps1"], PATHEXT=".EXE;.CMD")

    assert find_command("NPX.CMD", platform) == FoundCommand(r"C:\nodejs\NPX.CMD", CommandKind.BATCH)
    assert isinstance(find_command("run", platform), MissingCommand)


def test_on_windows_a_relative_command_is_taken_from_the_entrys_folder_and_a_drive_path_gets_pathext():
    platform = windows([r"C:\project\scripts\serve.bat", r"C:\tools\uvx.exe"])

    assert find_command(r".\scripts\serve", platform) == FoundCommand(
        r"C:\project\scripts\serve.bat", CommandKind.BATCH
    )
    assert find_command(r"C:\tools\uvx", platform) == FoundCommand(r"C:\tools\uvx.exe", CommandKind.PROGRAM)


def test_a_missing_windows_command_lists_the_path_folders_searched():
    missing = find_command("uvx", windows([]))

    assert missing == MissingCommand("uvx", (r"C:\nodejs", r"C:\Windows\system32"))


def test_a_windows_batch_file_is_started_by_cmd_with_its_arguments_quoted_for_cmd():
    platform = windows(
        [r"C:\Program Files\nodejs\npx.cmd"], path=r"C:\Program Files\nodejs", COMSPEC=r"C:\WINDOWS\system32\cmd.exe"
    )

    plan = plan_launch("npx", ("-y", "@scope/server", r"C:\My Files", 'say "hi"'), platform)

    assert isinstance(plan, Launch)
    line = r'"C:\Program Files\nodejs\npx.cmd" -y @scope/server "C:\My Files" "say ""hi"""'
    assert plan.shell_line == line
    assert plan.argv == (r"C:\WINDOWS\system32\cmd.exe", "/c", f'"{line}"')


def test_a_windows_program_is_started_directly_with_its_arguments():
    plan = plan_launch("node", ("server.js",), windows([r"C:\nodejs\node.exe"]))

    assert isinstance(plan, Launch)
    assert plan.argv == (r"C:\nodejs\node.exe", "server.js")
    assert plan.shell_line is None


def test_a_batch_argument_with_a_line_break_is_refused():
    with pytest.raises(UnsafeBatchArgumentError):
        plan_launch("npx", ("a\nb",), windows([r"C:\nodejs\npx.cmd"]))


def test_on_posix_a_bare_name_is_looked_up_on_path_only_and_never_in_the_entrys_folder():
    platform = posix(["/work/project/npx", "/usr/bin/npx"])

    assert find_command("npx", platform) == FoundCommand("/usr/bin/npx", CommandKind.PROGRAM)


def test_on_posix_a_file_without_execute_permission_is_skipped_and_named_when_nothing_else_is_found():
    skipped = posix(["/usr/local/bin/uvx", "/usr/bin/uvx"], executable=["/usr/bin/uvx"])
    only_one = posix(["/usr/local/bin/uvx"], executable=[])

    assert find_command("uvx", skipped) == FoundCommand("/usr/bin/uvx", CommandKind.PROGRAM)
    assert find_command("uvx", only_one) == MissingCommand(
        "uvx", ("/usr/local/bin", "/usr/bin"), ("/usr/local/bin/uvx",)
    )


def test_on_posix_a_relative_command_and_a_relative_path_folder_are_taken_from_the_entrys_folder():
    platform = posix(
        ["/work/project/bin/serve", "/work/project/node_modules/.bin/mcp"], path="node_modules/.bin:/usr/bin"
    )

    assert find_command("./bin/serve", platform) == FoundCommand("/work/project/bin/serve", CommandKind.PROGRAM)
    assert find_command("bin/serve", platform) == FoundCommand("/work/project/bin/serve", CommandKind.PROGRAM)
    assert find_command("mcp", platform) == FoundCommand("/work/project/node_modules/.bin/mcp", CommandKind.PROGRAM)
    assert find_command("./missing", platform) == MissingCommand(
        "./missing", ("/work/project/missing",), bare_name=False
    )


def test_a_leading_tilde_is_the_home_folder():
    platform = posix(["/home/ada/bin/server"])

    assert find_command("~/bin/server", platform) == FoundCommand("/home/ada/bin/server", CommandKind.PROGRAM)
