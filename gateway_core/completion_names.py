"""The server and agent names in config.json, read fast for shell completion.

Tab runs ``toolgate completion --names servers|agents`` each time a name is expected, so that path
imports nothing but this module and ``gateway_core.paths`` (loading the whole command line takes
seconds on a busy machine). It is quiet: no config, or one that cannot be read, completes nothing.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway_core.paths import Paths

KINDS = ("servers", "agents")
NAMES_ARGS = ("completion", "--names")


def configured_names(config_file: Path, kind: str) -> list[str]:
    """The names in ``config_file``'s ``kind`` block (``servers`` or ``agents``); none when it cannot be read."""
    try:
        data = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    block = data.get(kind) if isinstance(data, dict) else None
    return [str(name) for name in block] if isinstance(block, dict) else []


def print_names(argv: Sequence[str]) -> bool:
    """Answer ``completion --names KIND`` on stdout; False (nothing done) for any other arguments."""
    if tuple(argv[:2]) != NAMES_ARGS or len(argv) != 3 or argv[2] not in KINDS:
        return False
    names = configured_names(Paths.from_env().config_file, argv[2])
    sys.stdout.write("".join(f"{name}\n" for name in names))
    return True
