"""Arguments for a Windows batch file reach it exactly as given, and none can make cmd.exe run anything else."""

from __future__ import annotations

import pytest

from gateway_core.launch.batch import UnsafeBatchArgumentError, batch_command_line

SCRIPT = r"C:\nodejs\npx.cmd"


@pytest.mark.parametrize(
    ("arg", "quoted"),
    [
        ("-y", "-y"),
        ("@modelcontextprotocol/server-filesystem", "@modelcontextprotocol/server-filesystem"),
        (r"C:\Users\ada\My Files", r'"C:\Users\ada\My Files"'),
        ('say "hi"', '"say ""hi"""'),
        ("a&calc.exe", '"a&calc.exe"'),
        ("x|y>z<w^v", '"x|y>z<w^v"'),
        ("%PATH%", '"%%cd:~,%PATH%%cd:~,%"'),
        ("", '""'),
        ("C:\\dir\\", '"C:\\dir\\\\"'),
        ('a\\"b', '"a\\\\""b"'),
    ],
)
def test_each_argument_is_quoted_so_cmd_passes_it_through_unchanged(arg: str, quoted: str):
    assert batch_command_line(SCRIPT, ["first", arg]) == f'"{SCRIPT}" first {quoted}'


@pytest.mark.parametrize("arg", ["one\ntwo", "one\rtwo", "nul\0"])
def test_an_argument_with_a_line_break_or_nul_is_refused(arg: str):
    with pytest.raises(UnsafeBatchArgumentError):
        batch_command_line(SCRIPT, [arg])


@pytest.mark.parametrize("script", ['C:\\odd"name.cmd', "C:\\folder\\"])
def test_a_script_path_that_cannot_be_quoted_is_refused(script: str):
    with pytest.raises(UnsafeBatchArgumentError):
        batch_command_line(script, [])
