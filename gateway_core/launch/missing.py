"""What to tell the person when a server's command is not found: where it was looked for, what provides it."""

from __future__ import annotations

import ntpath

from gateway_core.launch.commands import MissingCommand

# Commands that MCP server READMEs start with, and what installs them.
PROVIDERS: dict[str, str] = {
    "npx": "Node.js",
    "node": "Node.js",
    "npm": "Node.js",
    "pnpm": "pnpm (or Node.js's corepack)",
    "yarn": "Yarn (or Node.js's corepack)",
    "uvx": "uv",
    "uv": "uv",
    "pipx": "pipx",
    "python": "Python",
    "python3": "Python",
    "py": "Python (the Windows launcher)",
    "docker": "Docker",
    "podman": "Podman",
    "deno": "Deno",
    "bun": "Bun",
    "bunx": "Bun",
    "go": "Go",
    "cargo": "Rust (rustup)",
    "java": "a Java runtime",
    "dotnet": ".NET",
    "ruby": "Ruby",
}


def provider_of(command: str) -> str | None:
    """What provides ``command`` (``npx`` → Node.js), by its file name without a Windows extension."""
    name = ntpath.basename(command.replace("/", "\\"))
    stem, ext = ntpath.splitext(name)
    if ext.lower() in (".exe", ".cmd", ".bat", ".com"):
        name = stem
    return PROVIDERS.get(name.lower())


def describe_missing(missing: MissingCommand) -> str:
    """One sentence or two for a status, the log and ``toolgate doctor``.

    e.g. "command 'npx' not found (searched: /usr/bin, /bin). Node.js provides npx; install it or set
    the full path in the server's command"
    """
    if missing.not_executable:
        return (
            f"command {missing.command!r} is not executable: {', '.join(missing.not_executable)} "
            "has no execute permission (chmod +x it, or set the interpreter as the command)"
        )
    if not missing.bare_name:
        return f"command {missing.command!r} not found: there is no file {missing.searched[0]}"
    searched = ", ".join(missing.searched) if missing.searched else "PATH is empty"
    found = f"command {missing.command!r} not found (searched: {searched})."
    provider = provider_of(missing.command)
    if provider is None:
        return f"{found} Install it or set the full path in the server's command"
    return f"{found} {provider} provides {missing.command}; install it or set the full path in the server's command"
