"""Reading the server JSON that READMEs publish, in each of the shapes they use."""

import pytest

from gateway_core.clients.snippet import SnippetError, parse_snippet, placeholders

GITHUB = '"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"]'


@pytest.mark.parametrize(
    "text",
    [
        '{"mcpServers": {"github": {' + GITHUB + "}}}",
        '{"servers": {"github": {' + GITHUB + "}}}",
        '{"mcp": {"servers": {"github": {' + GITHUB + "}}}}",
        '{"context_servers": {"github": {' + GITHUB + "}}}",
        '{"github": {' + GITHUB + "}}",
        '"github": {' + GITHUB + "},",
        '{\n  // from the README\n  "mcpServers": {"github": {' + GITHUB + ",},},\n}",
        "{" + GITHUB + "}",
    ],
)
def test_every_published_shape_gives_the_same_server(text):
    [server], notes = parse_snippet(text)
    assert (server.name, server.command, server.args) == (
        "github",
        "npx",
        ("-y", "@modelcontextprotocol/server-github"),
    )
    assert notes == []


def test_remote_entries_keep_their_transport_and_headers():
    text = """{"servers": {
        "copilot": {
            "type": "http",
            "url": "https://api.githubcopilot.com/mcp/",
            "headers": {"Authorization": "Bearer <YOUR_TOKEN>"}
        },
        "old": {"url": "https://example.com/sse"}
    }}"""
    copilot, old = parse_snippet(text)[0]
    assert (copilot.transport, copilot.url, dict(copilot.headers)) == (
        "http",
        "https://api.githubcopilot.com/mcp/",
        {"Authorization": "Bearer <YOUR_TOKEN>"},
    )
    assert old.transport == "sse"
    assert placeholders(copilot) == ["Authorization"]
    [unnamed], _ = parse_snippet('{"url": "https://mcp.linear.app/sse"}')
    assert unnamed.name == "linear"


def test_values_left_for_the_reader_to_fill_in_are_found():
    [server], _ = parse_snippet(
        '{"x": {"command": "npx", "env": {"A": "<YOUR_KEY>", "B": "your-api-key", "C": "real", "D": ""}}}'
    )
    assert placeholders(server) == ["A", "B", "D"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "Paste the JSON"),
        ("npx -y @modelcontextprotocol/server-github", "not valid JSON"),
        ("[1, 2]", "Expected a JSON object"),
        ('{"mcpServers": {"x": {"args": []}}}', "x: has neither a command nor a URL"),
    ],
)
def test_text_with_no_server_entry_says_what_is_wrong(text, says):
    with pytest.raises(SnippetError, match=says):
        parse_snippet(text)


def test_an_entry_of_no_known_shape_is_noted_and_the_others_kept():
    servers, notes = parse_snippet('{"a": {"command": "x"}, "b": 3}')
    assert [s.name for s in servers] == ["a"]
    assert notes == ["b: has neither a command nor a URL; skipped"]
