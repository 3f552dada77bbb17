import json
import sys
from pathlib import Path

from app.snippets import http_snippet, shim_snippet
from gateway_core import shim_command
from gateway_core.shim.cli import TOKEN_ENV, _parser


def test_the_http_snippet_is_json_with_the_url_and_the_bearer_token():
    snippet = json.loads(http_snippet("cursor", "http://127.0.0.1:47800/mcp", "tg_secret"))

    assert snippet == {
        "mcpServers": {
            "toolgate": {
                "type": "http",
                "url": "http://127.0.0.1:47800/mcp",
                "headers": {"Authorization": "Bearer tg_secret"},
            }
        }
    }


def test_the_shim_snippet_runs_the_shim_for_the_agent_with_its_token_in_the_environment():
    snippet = json.loads(shim_snippet("cursor", "tg_secret", "/opt/toolgate/bin/toolgate-shim"))

    entry = snippet["mcpServers"]["toolgate"]
    assert entry == {
        "command": "/opt/toolgate/bin/toolgate-shim",
        "args": ["--agent", "cursor"],
        "env": {"TOOLGATE_TOKEN": "tg_secret"},
    }
    assert TOKEN_ENV in entry["env"]
    assert _parser().parse_args(entry["args"]).agent == "cursor"


def test_the_shim_beside_the_interpreter_is_preferred(tmp_path):
    (tmp_path / "toolgate-shim").write_text("")

    found = shim_command(str(tmp_path / "python"), which=lambda name: "/usr/bin/toolgate-shim", platform="linux")

    assert found == str(tmp_path / "toolgate-shim")


def test_a_windows_shim_beside_a_frozen_app_has_the_exe_suffix(tmp_path):
    (tmp_path / "toolgate-shim.exe").write_text("")

    assert shim_command(str(tmp_path / "Toolgate.exe"), which=lambda name: None, platform="win32") == str(
        tmp_path / "toolgate-shim.exe"
    )


def test_without_a_shim_beside_the_interpreter_the_one_on_path_is_used_else_the_bare_name(tmp_path):
    executable = str(tmp_path / "python")

    assert shim_command(executable, which=lambda name: f"/usr/local/bin/{name}") == "/usr/local/bin/toolgate-shim"
    assert shim_command(executable, which=lambda name: None) == "toolgate-shim"


def test_the_development_venv_shim_is_found_beside_its_interpreter():
    assert Path(shim_command()).parent == Path(sys.executable).parent


def test_the_shim_path_the_windows_installer_recorded_comes_first_while_that_file_exists(tmp_path):
    installed = tmp_path / "Programs" / "Toolgate" / "toolgate-shim.exe"
    installed.parent.mkdir(parents=True)
    installed.write_text("")
    elsewhere = tmp_path / "dev" / "python.exe"

    found = shim_command(str(elsewhere), which=lambda name: None, platform="win32", recorded=lambda: str(installed))
    gone = shim_command(str(elsewhere), which=lambda name: None, platform="win32", recorded=lambda: str(tmp_path / "x"))

    assert found == str(installed)
    assert gone == "toolgate-shim"
