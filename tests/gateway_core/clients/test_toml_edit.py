import tomllib

import pytest

from gateway_core.clients.toml_edit import TomlEditError, parse, remove_server, servers, set_server

CONFIG = """\
# Codex settings — edited by hand ✓
model = "o3"
approval_policy = "on-request"

[profiles.fast]
model = "gpt-4.1-mini"  # quick answers

[mcp_servers.github]
command = "npx"
args = ["-y", "@modelcontextprotocol/server-github"]

[mcp_servers.github.env]
# the token comes from the keychain wrapper
GITHUB_TOKEN = "ghp_123"

# Local files, on the Windows machine
[mcp_servers."files é"]
command = 'C:\\Tools\\node.exe'
args = ["C:\\\\Users\\\\Zoë\\\\mcp\\\\files.js", "--root", "D:\\\\projets"]
startup_timeout_sec = 20

[profiles.slow]
model = "o3-pro"
"""

GITHUB_BLOCK = """\
[mcp_servers.github]
command = "npx"
args = ["-y", "@modelcontextprotocol/server-github"]

[mcp_servers.github.env]
# the token comes from the keychain wrapper
GITHUB_TOKEN = "ghp_123"
"""

TOOLGATE = {"command": "toolgate", "args": ["shim", "--agent", "codex"], "env": {"TOOLGATE_HOME": "/home/a"}}


def test_servers_reads_every_configured_server_with_its_sub_tables():
    found = servers(CONFIG)

    assert list(found) == ["github", "files é"]
    assert found["github"]["env"] == {"GITHUB_TOKEN": "ghp_123"}
    assert found["files é"]["args"] == ["C:\\Users\\Zoë\\mcp\\files.js", "--root", "D:\\projets"]
    assert found["files é"]["command"] == "C:\\Tools\\node.exe"


def test_servers_is_empty_when_there_is_no_mcp_servers_table():
    assert servers('model = "o3"\n') == {}


def test_a_new_server_is_appended_after_one_blank_line_and_everything_before_it_is_unchanged():
    result = set_server(CONFIG, "toolgate", TOOLGATE)

    assert result.startswith(CONFIG + "\n[mcp_servers.toolgate]\n")
    assert result.endswith("\n")
    assert servers(result)["toolgate"] == TOOLGATE
    assert 'env = { TOOLGATE_HOME = "/home/a" }' in result


def test_a_file_without_a_final_newline_gets_one_before_the_new_block():
    result = set_server('model = "o3"', "toolgate", {"command": "toolgate"})

    assert result == 'model = "o3"\n\n[mcp_servers.toolgate]\ncommand = "toolgate"\n'


def test_an_empty_file_gets_just_the_new_block():
    assert set_server("", "toolgate", {"enabled": True}) == "[mcp_servers.toolgate]\nenabled = true\n"


def test_replacing_a_server_with_a_sub_table_keeps_the_bytes_before_and_after_its_block():
    before, after = CONFIG.split(GITHUB_BLOCK)

    result = set_server(CONFIG, "github", {"url": "https://api.example/mcp", "bearer_token_env_var": "GH_TOKEN"})

    assert result == (
        before + '[mcp_servers.github]\nurl = "https://api.example/mcp"\nbearer_token_env_var = "GH_TOKEN"\n' + after
    )
    assert after.startswith("\n# Local files, on the Windows machine\n")


def test_replacing_a_server_leaves_the_other_servers_and_profiles_as_they_were():
    result = set_server(CONFIG, "files é", {"command": "node"})

    assert result.endswith('[mcp_servers."files é"]\ncommand = "node"\n\n[profiles.slow]\nmodel = "o3-pro"\n')
    assert parse(result)["profiles"] == parse(CONFIG)["profiles"]
    assert servers(result)["github"] == servers(CONFIG)["github"]


def test_removing_a_server_removes_only_its_block_and_one_blank_line():
    before, after = CONFIG.split(GITHUB_BLOCK)

    result = remove_server(CONFIG, "github")

    assert result == before.removesuffix("\n") + after
    assert "# Local files, on the Windows machine\n" in result
    assert list(servers(result)) == ["files é"]


def test_removing_an_absent_server_changes_nothing():
    assert remove_server(CONFIG, "toolgate") == CONFIG


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_set_then_remove_of_a_new_server_gives_back_the_original_text(ending):
    original = CONFIG.replace("\n", ending)

    added = set_server(original, "toolgate", TOOLGATE)

    assert "[mcp_servers.toolgate]" + ending in added
    assert remove_server(added, "toolgate") == original


def test_strings_and_keys_with_quotes_backslashes_newlines_and_unicode_round_trip():
    awkward = 'say "hi"\\ C:\\path\\ line1\nline2\ttab \x7f\x01 emoji 🎉 ü'
    entry = {"command": awkward, "args": [awkward, ""], "env": {"weird key=": awkward, "A.B": "x"}, "enabled": False}

    result = set_server("", "a b", entry)

    assert tomllib.loads(result) == {"mcp_servers": {"a b": entry}}
    assert "\\u007F" in result and "\\u0001" in result and "🎉" in result


def test_numbers_and_booleans_are_written_as_toml_values():
    result = set_server("", "s", {"startup_timeout_sec": 20, "tool_timeout_sec": 60.5, "enabled": True})

    assert result == "[mcp_servers.s]\nstartup_timeout_sec = 20\ntool_timeout_sec = 60.5\nenabled = true\n"


def test_brackets_inside_a_multi_line_string_are_not_taken_for_a_table_header():
    text = 'notes = """\n[mcp_servers.github]\n"""\n\n[mcp_servers.github]\ncommand = "npx"\n'

    result = set_server(text, "github", {"command": "uvx"})

    assert result == 'notes = """\n[mcp_servers.github]\n"""\n\n[mcp_servers.github]\ncommand = "uvx"\n'


def test_broken_toml_raises_an_error_naming_the_line_and_column():
    with pytest.raises(TomlEditError, match=r"config.toml is not valid TOML: .*\(line 4, column 11\)") as caught:
        servers('model = "o3"\n\n[mcp_servers.x]\ncommand = \n')

    assert (caught.value.line, caught.value.column) == (4, 11)


@pytest.mark.parametrize(
    "text",
    [
        'mcp_servers = { github = { command = "npx" } }\n',
        '[mcp_servers]\ngithub = { command = "npx" }\n',
        '[mcp_servers]\ngithub.command = "npx"\n',
    ],
)
def test_a_server_written_as_an_inline_table_is_refused_rather_than_corrupted(text):
    with pytest.raises(TomlEditError, match="github.*written as an inline table.*edit it by hand"):
        remove_server(text, "github")
    with pytest.raises(TomlEditError, match="github.*written as an inline table.*edit it by hand"):
        set_server(text, "github", {"command": "uvx"})


def test_adding_beside_an_inline_mcp_servers_table_is_refused():
    text = 'mcp_servers = { github = { command = "npx" } }\n'

    with pytest.raises(TomlEditError, match="inline table.*edit it by hand"):
        set_server(text, "toolgate", {"command": "toolgate"})
