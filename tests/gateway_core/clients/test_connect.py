"""Writing Toolgate into client files and taking it out: backups, byte-preserving edits, dry runs."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from gateway_core.clients import jsonc
from gateway_core.clients.connect import apply_change, connect_change, disconnect_change, toolgate_entry
from gateway_core.clients.found import ClientConfigError, ConfigFile, config_files
from gateway_core.clients.table import client

URL = "http://127.0.0.1:47800/mcp"
SHIM = "/opt/toolgate/toolgate-shim"


def user_file(home: Path, client_id: str) -> ConfigFile:
    return config_files(client(client_id), home=home, environ={}, platform="linux")[0]


def entry_for(client_id: str, *, http: bool) -> dict[str, object]:
    return toolgate_entry(
        client(client_id), http=http, url=URL, agent_id=client_id, token="tg_secret", shim_command=SHIM
    )


def test_entries_are_written_in_each_clients_own_words():
    assert entry_for("vscode", http=True) == {
        "type": "http",
        "url": URL,
        "headers": {"Authorization": "Bearer tg_secret"},
    }
    assert entry_for("windsurf", http=True)["serverUrl"] == URL
    assert entry_for("gemini", http=True)["httpUrl"] == URL
    assert entry_for("zed", http=False) == {
        "source": "custom",
        "command": SHIM,
        "args": ["--agent", "zed"],
        "env": {"TOOLGATE_TOKEN": "tg_secret"},
    }
    with pytest.raises(ValueError, match="Claude Desktop cannot use an HTTP entry"):
        entry_for("claude-desktop", http=True)


def test_a_dry_run_shows_the_diff_and_touches_nothing(client_home):
    file = user_file(client_home, "vscode")
    original = file.path.read_bytes()

    change = connect_change(file, entry_for("vscode", http=True))

    assert '+\t\t"toolgate": {' in change.diff() or '"toolgate"' in change.diff()
    assert file.path.read_bytes() == original


def test_diffs_never_show_a_token_not_even_the_one_being_removed(client_home, tmp_path):
    file = user_file(client_home, "vscode")
    token = "tg_live0123456789abcdef"
    entry = toolgate_entry(client("vscode"), http=True, url=URL, agent_id="vscode", token=token, shim_command=SHIM)
    connecting = connect_change(file, entry)
    apply_change(connecting, tmp_path, connecting=True)
    file.path.write_text(file.path.read_text() + "\n")  # changed since: disconnect removes only Toolgate's entry

    disconnecting = disconnect_change(file, tmp_path)

    for diff in (connecting.diff(), disconnecting.diff()):
        assert token not in diff
        assert '"Authorization": "[redacted]"' in diff
    assert token in file.path.read_text()  # only what is shown is masked


def test_connecting_vscode_keeps_its_comments_and_other_servers_and_disconnect_restores_the_bytes(
    client_home, tmp_path
):
    backups = tmp_path / "backups"
    file = user_file(client_home, "vscode")
    original = file.path.read_bytes()

    backup = apply_change(connect_change(file, entry_for("vscode", http=True)), backups, connecting=True)
    connected = file.path.read_text()

    assert backup is not None and backup.read_bytes() == original
    assert "// the zone" in connected and "/* servers live under" in connected
    servers = jsonc.get(connected, ["servers"])
    assert set(servers) == {"time", "github", "toolgate"}
    assert servers["toolgate"]["url"] == URL

    apply_change(disconnect_change(file, backups), backups, connecting=False)
    assert file.path.read_bytes() == original


def test_connecting_can_take_out_the_servers_toolgate_now_provides(client_home, tmp_path):
    file = user_file(client_home, "claude-code")

    apply_change(
        connect_change(file, entry_for("claude-code", http=True), remove=["github"]), tmp_path, connecting=True
    )
    data = json.loads(file.path.read_text())

    assert set(data["mcpServers"]) == {"docs", "toolgate"}
    assert data["numStartups"] == 42 and "/work/app" in data["projects"]


def test_codex_gets_the_shim_in_its_toml_and_keeps_its_profiles(client_home, tmp_path):
    file = user_file(client_home, "codex")
    original = file.path.read_text()

    apply_change(connect_change(file, entry_for("codex", http=False)), tmp_path, connecting=True)
    text = file.path.read_text()
    data = tomllib.loads(text)

    assert text.startswith(original.rstrip("\n"))
    assert data["mcp_servers"]["toolgate"]["args"] == ["--agent", "codex"]
    assert data["profiles"]["fast"]["model"] == "gpt-4.1-mini"


def test_disconnect_after_the_file_changed_removes_only_toolgates_entry(client_home, tmp_path):
    file = user_file(client_home, "cursor")
    apply_change(connect_change(file, entry_for("cursor", http=True)), tmp_path, connecting=True)
    edited = json.loads(file.path.read_text())
    edited["mcpServers"]["added-later"] = {"command": "later"}
    file.path.write_text(json.dumps(edited, indent=4))

    apply_change(disconnect_change(file, tmp_path), tmp_path, connecting=False)

    assert set(json.loads(file.path.read_text())["mcpServers"]) == {"linear", "added-later"}


def test_a_client_without_a_config_file_gets_one_and_disconnect_removes_it_again(tmp_path):
    home = tmp_path / "empty-home"
    file = user_file(home, "gemini")

    apply_change(connect_change(file, entry_for("gemini", http=True)), tmp_path / "b", connecting=True)
    assert jsonc.get(file.path.read_text(), ["mcpServers", "toolgate", "httpUrl"]) == URL

    apply_change(disconnect_change(file, tmp_path / "b"), tmp_path / "b", connecting=False)
    assert not file.path.exists()


def test_a_broken_file_is_refused_with_the_reason_and_left_as_it_was(client_home, tmp_path):
    file = user_file(client_home, "cline")
    original = file.path.read_bytes()

    with pytest.raises(ClientConfigError, match="cline_mcp_settings.json: .*line 1"):
        connect_change(file, entry_for("cline", http=True))
    assert file.path.read_bytes() == original
