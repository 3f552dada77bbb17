from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway_core.clients.jsonc import JsoncError, get, parse, remove_member, set_member


def _tabs(text: str) -> str:
    """The text with each leading 4-space step turned into a tab (VS Code's default indentation)."""
    return re.sub(r"^(?: {4})+", lambda m: "\t" * (len(m.group()) // 4), text, flags=re.MULTILINE)


def _diff(before: str, after: str) -> tuple[str, str]:
    """What an edit removed and what it added, once the common prefix and suffix are set aside."""
    start = 0
    while start < min(len(before), len(after)) and before[start] == after[start]:
        start += 1
    end = 0
    while end < min(len(before), len(after)) - start and before[-1 - end] == after[-1 - end]:
        end += 1
    return before[start : len(before) - end], after[start : len(after) - end]


VSCODE_MCP = _tabs("""\
// Workspace MCP servers: https://code.visualstudio.com/docs/copilot/chat/mcp-servers
{
    "inputs": [
        {
            "type": "promptString",
            "id": "github-token",
            "password": true,
        },
    ],
    /* Servers are started by VS Code on demand. */
    "servers": {
        "github": {
            "type": "http",
            "url": "https://api.githubcopilot.com/mcp/", // hosted
            "headers": { "Authorization": "Bearer ${input:github-token}" },
        },
        "fetch": {
            "command": "uvx",
            "args": ["mcp-server-fetch"],
        }, // end of fetch
    },
}
""")

ZED_SETTINGS = """\
// Zed settings
//
// For information on how to configure Zed, see the Zed
// documentation: https://zed.dev/docs/configuring-zed
{
  "theme": {
    "mode": "system",
    "light": "One Light",
    "dark": "One Dark"
  },
  "ui_font_size": 16,
  "buffer_font_size": 15.5,
  "vim_mode": false,
  /* "format_on_save": "off", */
  "languages": {
    "Python": { "tab_size": 4, "formatter": "language_server" }
  },
  "telemetry": { "diagnostics": false, "metrics": false },
  "context_servers": {
    "postgres": {
      "command": { "path": "npx", "args": ["-y", "@modelcontextprotocol/server-postgres"], "env": null }
    }
  },
  "lsp": {}
}
"""

CLAUDE_DESKTOP = """\
{
    "globalShortcut": "Ctrl+Space",
    "preferences": {"menuBarEnabled": true}
}
"""

SHIM = {"command": "toolgate-shim", "args": ["--agent", "claude"]}


# Parsing


def test_a_vscode_file_with_comments_and_trailing_commas_parses_to_plain_values() -> None:
    assert parse(VSCODE_MCP) == {
        "inputs": [{"type": "promptString", "id": "github-token", "password": True}],
        "servers": {
            "github": {
                "type": "http",
                "url": "https://api.githubcopilot.com/mcp/",
                "headers": {"Authorization": "Bearer ${input:github-token}"},
            },
            "fetch": {"command": "uvx", "args": ["mcp-server-fetch"]},
        },
    }


def test_crlf_line_endings_and_tabs_parse_like_lf() -> None:
    assert parse(VSCODE_MCP.replace("\n", "\r\n")) == parse(VSCODE_MCP)


def test_scalars_and_escapes_parse_as_json_does() -> None:
    text = r'{"n": -12, "f": 1.5e3, "s": "tab\t \u00e9 \"q\" // not a comment", "t": true, "z": null, "e": []}'
    assert parse(text) == json.loads(text)
    assert isinstance(parse('{"n": 2}')["n"], int)


def test_the_last_of_duplicate_keys_wins() -> None:
    assert parse('{"a": 1, "a": 2}') == {"a": 2}


def test_get_returns_the_value_at_a_path_or_none_when_absent() -> None:
    assert get(VSCODE_MCP, ["servers", "fetch", "command"]) == "uvx"
    assert get(VSCODE_MCP, ["servers", "missing"]) is None
    assert get(VSCODE_MCP, ["servers", "fetch", "command", "deeper"]) is None
    assert get("  \n", ["servers"]) is None


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ('{\n  "a": "open\n}', "line 2, column 8", "unterminated string"),
        ('{\n  "a": 1\n  "b": 2\n}', "line 3, column 3", "expected ',' or '}' after a member"),
        ('{\n  "a": 1 /* forgot to close\n}', "line 2, column 10", "unclosed /* comment"),
        ("{'a': 1}", "line 1, column 2", "expected a key in double quotes"),
        ("{a: 1}", "line 1, column 2", "expected a key in double quotes"),
        ('{"a": [1 2]}', "line 1, column 10", "expected ',' or ']' after an element"),
        ('{"a": 1} {"b": 2}', "line 1, column 10", "unexpected text after the end"),
        ('{"a": tru}', "line 1, column 7", "expected a value"),
        ('{"a": "\\x"}', "line 1, column 8", "invalid escape"),
    ],
)
def test_broken_input_raises_an_error_that_says_what_and_where(text: str, where: str, problem: str) -> None:
    with pytest.raises(JsoncError, match=re.escape(f"{where}: {problem}")):
        parse(text)


def test_absurdly_deep_nesting_is_an_error_rather_than_a_crash() -> None:
    with pytest.raises(JsoncError, match="nested deeper than"):
        parse('{"a": ' + "[" * 1000 + "]" * 1000 + "}")


def test_a_root_that_is_not_an_object_cannot_be_edited() -> None:
    text = '// a list\n["github"]\n'
    assert parse(text) == ["github"]
    with pytest.raises(JsoncError, match="line 2, column 1: the top level must be an object"):
        set_member(text, ["servers"], "toolgate", SHIM)
    with pytest.raises(JsoncError):
        remove_member(text, [], "github")


def test_a_path_through_a_value_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(JsoncError, match='line 3, column 12: "inputs" holds a value that is not an object'):
        set_member(VSCODE_MCP, ["inputs"], "toolgate", SHIM)


# Setting


def test_a_new_server_goes_last_under_servers_with_tabs_and_a_trailing_comma() -> None:
    edited = set_member(VSCODE_MCP, ["servers"], "toolgate", {"type": "http", "url": "http://127.0.0.1:8765/mcp"})
    added = '\t\t"toolgate": {\n\t\t\t"type": "http",\n\t\t\t"url": "http://127.0.0.1:8765/mcp"\n\t\t},\n'
    assert edited == VSCODE_MCP.replace("// end of fetch\n", "// end of fetch\n" + added)
    assert get(edited, ["servers", "toolgate", "url"]) == "http://127.0.0.1:8765/mcp"


def test_a_comma_goes_right_after_a_last_member_that_is_followed_by_a_comment() -> None:
    text = '{\n  "a": 1,\n  "b": 2 // keep me\n}\n'
    assert set_member(text, [], "c", 3) == '{\n  "a": 1,\n  "b": 2, // keep me\n  "c": 3\n}\n'
    text = '{\n  "a": 1 /*/ odd */ /* two\n  lines */\n}'
    assert set_member(text, [], "c", 3) == '{\n  "a": 1, /*/ odd */\n  "c": 3 /* two\n  lines */\n}'


def test_a_missing_path_is_created_with_the_files_four_space_indentation() -> None:
    edited = set_member(CLAUDE_DESKTOP, ["mcpServers"], "toolgate", SHIM)
    assert (
        edited
        == """\
{
    "globalShortcut": "Ctrl+Space",
    "preferences": {"menuBarEnabled": true},
    "mcpServers": {
        "toolgate": {
            "command": "toolgate-shim",
            "args": [
                "--agent",
                "claude"
            ]
        }
    }
}
"""
    )


def test_a_new_context_server_in_zed_settings_leaves_every_other_byte_alone() -> None:
    edited = set_member(ZED_SETTINGS, ["context_servers"], "toolgate", {"command": {"path": "toolgate-shim"}})
    removed, added = _diff(ZED_SETTINGS, edited)
    assert removed == ""
    assert added == ',\n    "toolgate": {\n      "command": {\n        "path": "toolgate-shim"\n      }\n    }'
    expected = parse(ZED_SETTINGS)
    expected["context_servers"]["toolgate"] = {"command": {"path": "toolgate-shim"}}
    assert parse(edited) == expected


def test_an_empty_object_gets_its_first_member_one_unit_deeper_than_its_line() -> None:
    edited = set_member(ZED_SETTINGS, ["lsp"], "pyright", {"binary": None})
    assert _diff(ZED_SETTINGS, edited) == ("", '\n    "pyright": {\n      "binary": null\n    }\n  ')
    assert '  "lsp": {\n    "pyright"' in edited


def test_an_empty_or_blank_file_becomes_an_object_holding_the_path() -> None:
    expected = '{\n  "mcpServers": {\n    "toolgate": {\n      "command": "toolgate-shim"\n    }\n  }\n}\n'
    assert set_member("", ["mcpServers"], "toolgate", {"command": "toolgate-shim"}) == expected
    assert set_member(" \n\n", ["mcpServers"], "toolgate", {"command": "toolgate-shim"}) == expected


def test_crlf_line_endings_are_kept_by_an_insert() -> None:
    text = CLAUDE_DESKTOP.replace("\n", "\r\n")
    edited = set_member(text, ["mcpServers"], "toolgate", SHIM)
    assert edited == set_member(CLAUDE_DESKTOP, ["mcpServers"], "toolgate", SHIM).replace("\n", "\r\n")


def test_a_member_of_an_object_written_on_one_line_stays_on_that_line() -> None:
    text = '{"servers": {"a": {"command": "x"}}}'
    assert set_member(text, ["servers"], "b", {"url": "u"}) == '{"servers": {"a": {"command": "x"}, "b": {"url": "u"}}}'
    assert set_member('{"a": 1,}', [], "b", 2) == '{"a": 1, "b": 2,}'


def test_replacing_a_value_keeps_the_key_and_the_comment_after_it() -> None:
    edited = set_member(VSCODE_MCP, ["servers", "github"], "url", "https://example.test/mcp")
    assert edited == VSCODE_MCP.replace('"https://api.githubcopilot.com/mcp/"', '"https://example.test/mcp"')


def test_replacing_an_object_value_indents_it_like_its_key() -> None:
    edited = set_member(VSCODE_MCP, ["servers"], "fetch", {"command": "uvx"})
    old = '{\n\t\t\t"command": "uvx",\n\t\t\t"args": ["mcp-server-fetch"],\n\t\t}'
    assert edited == VSCODE_MCP.replace(old, '{\n\t\t\t"command": "uvx"\n\t\t}')
    assert "}, // end of fetch" in edited


def test_setting_a_duplicated_key_changes_the_copy_that_counts() -> None:
    assert parse(set_member('{"a": 1, "a": 2}', [], "a", 3)) == {"a": 3}


# Removing


def test_removing_a_middle_member_drops_its_lines_and_its_trailing_comment() -> None:
    text = '{\n  "a": 1, // about a\n  "b": {\n    "x": 2\n  }, // about b\n  "c": 3\n}\n'
    assert remove_member(text, [], "b") == '{\n  "a": 1, // about a\n  "c": 3\n}\n'


def test_removing_the_last_member_takes_the_previous_comma_but_not_its_comment() -> None:
    text = '{\r\n\t"a": 1, // about a\r\n\t"b": 2\r\n}\r\n'
    assert remove_member(text, [], "b") == '{\r\n\t"a": 1 // about a\r\n}\r\n'


def test_removing_the_last_member_keeps_the_files_trailing_commas() -> None:
    edited = remove_member(VSCODE_MCP, ["servers"], "fetch")
    fetch = '\t\t"fetch": {\n\t\t\t"command": "uvx",\n\t\t\t"args": ["mcp-server-fetch"],\n\t\t}, // end of fetch\n'
    assert edited == VSCODE_MCP.replace(fetch, "")
    assert parse(edited)["servers"] == {"github": parse(VSCODE_MCP)["servers"]["github"]}


def test_removing_the_only_member_leaves_an_empty_pair_of_braces() -> None:
    edited = remove_member(ZED_SETTINGS, ["context_servers"], "postgres")
    assert _diff(ZED_SETTINGS, edited)[1] == ""
    assert '  "context_servers": {},\n' in edited
    assert parse(edited)["context_servers"] == {}


def test_removing_from_an_object_on_one_line() -> None:
    assert remove_member('{"a": 1, "b": 2, "c": 3}', [], "b") == '{"a": 1, "c": 3}'
    assert remove_member('{"a": 1, "b": 2}', [], "b") == '{"a": 1}'
    assert remove_member('{ "a": 1 }', [], "a") == "{}"


def test_removing_an_absent_key_or_path_returns_the_text_unchanged() -> None:
    assert remove_member(VSCODE_MCP, ["servers"], "missing") == VSCODE_MCP
    assert remove_member(VSCODE_MCP, ["nowhere", "deeper"], "fetch") == VSCODE_MCP
    assert remove_member(VSCODE_MCP, ["inputs"], "id") == VSCODE_MCP
    assert remove_member("", ["servers"], "a") == ""


def test_removing_a_duplicated_key_removes_every_copy() -> None:
    assert parse(remove_member('{"a": 1, "b": 0, "a": 2}', [], "a")) == {"b": 0}


# Properties

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**9), 10**9)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=8,
)
_OBJECTS = st.dictionaries(st.text(max_size=4), _VALUES, max_size=4)
_LINE_COMMENT = st.text(st.sampled_from(' az"{}[],:/*'), max_size=8).map(lambda text: f" //{text}\n")
_BLOCK_COMMENT = st.text(st.sampled_from(' az"{}[],:/*'), max_size=8).filter(lambda text: "*/" not in text)


def _boundaries(dumped: str) -> list[tuple[int, str]]:
    """Offsets between tokens of ``dumped`` (outside strings), each with the character at that token."""
    found: list[tuple[int, str]] = []
    in_string = escaped = False
    for pos, char in enumerate(dumped):
        if in_string:
            in_string = escaped or char != '"'
            escaped = not escaped and char == "\\"
        elif char == '"':
            in_string = True
        elif char in "{[,:":
            found.append((pos + 1, char))
        elif char in "}]":
            found.append((pos, char))
    return found


@st.composite
def _jsonc_documents(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A random object and a JSONC text for it: random indentation, comments, trailing commas, CRLF."""
    value = draw(_OBJECTS)
    dumped = json.dumps(value, indent=draw(st.sampled_from([None, 0, 2, 4, "\t"])))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    spots = _boundaries(dumped)
    inserts: dict[int, str] = {}
    for pos, char in draw(st.lists(st.sampled_from(spots), max_size=6)):
        kind = draw(st.sampled_from(["line", "block", "comma"]))
        if kind == "comma" and char in "}]" and dumped[:pos].rstrip()[-1] not in "{[,":
            inserts[pos] = ","
        elif kind == "line":
            inserts[pos] = inserts.get(pos, "") + draw(_LINE_COMMENT)
        elif kind == "block" and pos not in inserts:
            inserts[pos] = f"/*{draw(_BLOCK_COMMENT)}*/"
    text = "".join(inserts.get(pos, "") + char for pos, char in enumerate(dumped)) + inserts.get(len(dumped), "")
    return json.loads(dumped), text.replace("\n", newline)


def _object_paths(value: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for key, child in value.items():
        if isinstance(child, dict):
            paths += _object_paths(child, (*prefix, key))
    return paths


@settings(deadline=None)
@given(_jsonc_documents())
def test_jsonc_parses_like_json_without_its_comments(document: tuple[dict[str, Any], str]) -> None:
    expected, text = document
    assert parse(text) == expected


@settings(deadline=None)
@given(_jsonc_documents(), st.data())
def test_setting_then_removing_a_new_member_gives_back_the_original(
    document: tuple[dict[str, Any], str], data: st.DataObject
) -> None:
    original, text = document
    path = data.draw(st.sampled_from(_object_paths(original)))
    holder = get(text, path)
    key = data.draw(st.text(max_size=4).filter(lambda k: k not in holder))
    value = data.draw(_VALUES)
    edited = set_member(text, path, key, value)
    assert get(edited, [*path, key]) == value
    restored = remove_member(edited, path, key)
    assert parse(restored) == original
    assert re.sub(r"\s", "", restored) == re.sub(r"\s", "", text)  # only blanks may differ
