"""A temporary home folder holding realistic config files of every client Toolgate knows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

CLAUDE_CODE_USER = """{
  "numStartups": 42,
  "theme": "dark",
  "mcpServers": {
    "github": {
      "type": "stdio",
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-github"],
      "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_exampleexampleexample", "LOG_LEVEL": "info"}
    },
    "docs": {"type": "http", "url": "https://docs.example.com/mcp", "headers": {"Authorization": "Bearer sk-docs-123"}}
  },
  "projects": {"/work/app": {"allowedTools": []}}
}
"""

VSCODE_USER = """// VS Code MCP servers (user)
{
\t/* servers live under "servers", not "mcpServers" */
\t"servers": {
\t\t"time": {
\t\t\t"type": "stdio",
\t\t\t"command": "uvx",
\t\t\t"args": ["mcp-server-time", "--local-timezone", "UTC"], // the zone
\t\t},
\t\t"github": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"],
\t\t\t"env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_exampleexampleexample"}},
\t},
\t"inputs": [],
}
"""

CODEX = """# Codex CLI
model = "o4-mini"

[profiles.fast]
model = "gpt-4.1-mini"

[mcp_servers.time]
command = "uvx"
args = ["mcp-server-time"]

[mcp_servers.brave]
command = "npx"
args = ["-y", "@modelcontextprotocol/server-brave-search"]
env = { BRAVE_API_KEY = "BSA-example" }
"""

ZED = """// Zed settings
{
  "theme": "One Dark",
  "buffer_font_size": 15,
  "context_servers": {
    "time": {
      "source": "custom",
      "command": "uvx",
      "args": ["mcp-server-time"],
    },
  },
}
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def client_home(tmp_path: Path) -> Path:
    """A Linux home with config files for every client, one of them broken."""
    home = tmp_path / "home"
    config = home / ".config"
    write(
        config / "Claude" / "claude_desktop_config.json",
        json.dumps(
            {
                "mcpServers": {
                    "filesystem": {
                        "command": "npx",
                        "args": ["-y", "@modelcontextprotocol/server-filesystem", "/work"],
                    },
                    "github": {
                        "command": "npx",
                        "args": ["-y", "@modelcontextprotocol/server-github"],
                        "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_exampleexampleexample"},
                    },
                },
                "globalShortcut": "Ctrl+Space",
            },
            indent=2,
        ),
    )
    write(home / ".claude.json", CLAUDE_CODE_USER)
    write(home / ".cursor" / "mcp.json", '{"mcpServers": {"linear": {"url": "https://mcp.linear.app/sse"}}}')
    write(config / "Code" / "User" / "mcp.json", VSCODE_USER)
    write(
        home / ".codeium" / "windsurf" / "mcp_config.json",
        json.dumps(
            {"mcpServers": {"docs": {"serverUrl": "https://docs.example.com/mcp/", "headers": {"X-Api-Key": "k-1"}}}}
        ),
    )
    write(home / ".codex" / "config.toml", CODEX)
    write(
        home / ".gemini" / "settings.json",
        '{"theme": "Default", "mcpServers": {"notes": {"httpUrl": "http://127.0.0.1:9000/mcp"}}}',
    )
    write(config / "zed" / "settings.json", ZED)
    write(
        config / "Code" / "User" / "globalStorage" / "saoudrizwan.claude-dev" / "settings" / "cline_mcp_settings.json",
        '{"mcpServers": {"broken": {"command": "npx", "args": [}}',
    )
    return home


@pytest.fixture
def client_home_as_home(client_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``client_home`` as the process's ``HOME``, so the CLI finds the clients there."""
    monkeypatch.setenv("HOME", str(client_home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    return client_home
