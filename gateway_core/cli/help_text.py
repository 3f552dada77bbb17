"""What every ``toolgate`` command's ``--help`` ends with: an example, and the exit codes.

Commands that state their own keep them; ``finish_help`` gives the rest an example from ``EXAMPLES``
and the exit codes every command shares, and refuses a command that has no example at all (so a new
command cannot be added without one).
"""

from __future__ import annotations

import argparse

# Every command's exit codes; a command states narrower ones in its own description.
EXIT_CODES = (
    "Exit codes: 0 done, 1 error (one 'Error: ...' line on stderr), 2 bad usage, "
    "3 no gateway running (for what needs one), 130 interrupted."
)
EXAMPLES = {
    "": "toolgate servers add time -- uvx mcp-server-time",
    "serve": "TOOLGATE_HOME=~/tg-test toolgate serve --port 47801",
    "config": "toolgate config check",
    "config check": "toolgate config check --config ./config.json",
    "config path": '"$EDITOR" "$(toolgate config path)"',
    "agents": "toolgate agents add cursor --name Cursor",
    "agents add": "toolgate agents add cursor --name Cursor",
    "agents list": "toolgate agents list",
    "agents remove": "toolgate agents remove cursor",
    "agents rotate": "toolgate agents rotate cursor",
    "agents tools": "toolgate agents tools cursor on_demand",
    "secrets": "toolgate secrets set github.GITHUB_TOKEN",
    "secrets set": 'printf %s "$TOKEN" | toolgate secrets set github.GITHUB_TOKEN',
    "secrets remove": "toolgate secrets remove github.GITHUB_TOKEN",
    "secrets backend": "toolgate secrets backend",
    "login": "toolgate login linear --no-browser",
    "logout": "toolgate logout linear",
    "approvals": "toolgate approvals list",
    "approvals list": "toolgate approvals list --json | jq -r .id",
    "approvals allow": "toolgate approvals allow 3f2a --always",
    "approvals deny": "toolgate approvals deny 3f2a",
    "tools": "toolgate tools --agent cursor --server github",
    "tools changes": "toolgate tools changes --server github",
    "tools accept": "toolgate tools accept github/create_issue",
    "prompts": "toolgate prompts --server github",
    "logs": "toolgate logs --agent cursor --outcome denied --follow",
    "clients": "toolgate clients list",
    "clients list": "toolgate clients list --project .",
    "import": "toolgate import cursor --dry-run",
    "connect": "toolgate connect claude-code --http --dry-run",
    "disconnect": "toolgate disconnect claude-code",
    "doctor": "toolgate doctor",
    "completion": "toolgate completion fish > ~/.config/fish/completions/toolgate.fish",
}


def finish_help(parser: argparse.ArgumentParser, path: tuple[str, ...] = (), summary: str = "") -> None:
    """Give ``parser`` and its subcommands, recursively, an example and the exit codes where they lack them.

    Raises:
        KeyError: a command has no example of its own and none in ``EXAMPLES``.
    """
    if "example" not in (parser.epilog or ""):
        example = EXAMPLES[" ".join(path)]
        parser.epilog = f"example: {example}" + (f"\n\n{parser.epilog}" if parser.epilog else "")
    if "Exit codes" not in (parser.description or "") + (parser.epilog or ""):
        sentence = f"{summary[:1].upper()}{summary[1:]}." if summary else ""
        parser.description = f"{parser.description or sentence} {EXIT_CODES}".strip()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            summaries = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                finish_help(sub, (*path, name), summaries.get(name, ""))
