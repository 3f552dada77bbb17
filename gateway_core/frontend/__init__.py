"""The agent-facing side: the HTTP front, the MCP server agents talk to, routing, policy enforcement, rounds."""
