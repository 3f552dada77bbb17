"""Agent token files: how a shim entry in a shared project file gets its token without carrying it.

A project's client config (``.mcp.json``, ``.vscode/mcp.json``, ``.cursor/mcp.json``) is shared with
everyone who clones the project, so Toolgate's entry there names only the agent:
``toolgate-shim --agent ID``. The shim reads that agent's token from ``agent-tokens/ID.token`` in
Toolgate's state folder: a 0600 file in a 0700 folder, written by ``toolgate connect --project``,
rewritten when the agent's token is rotated and deleted when the agent is removed.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from gateway_core.files import PRIVATE_FILE_MODE, Links, write_atomically
from gateway_core.paths import Paths, ensure_private_dir

# The shim (standard library only) spells this out again in gateway_core/shim/locate.py.
TOKEN_FILES_FOLDER = "agent-tokens"
TOKEN_FILE_SUFFIX = ".token"


class TokenFiles:
    """The agents' token files in one folder.

    Args:
        folder: where they are; created 0700 when the first one is written.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def of(cls, paths: Paths) -> TokenFiles:
        """The token files of the Toolgate whose files are ``paths``."""
        return cls(paths.state_dir / TOKEN_FILES_FOLDER)

    def path(self, agent_id: str) -> Path:
        """Where ``agent_id``'s token file is (it may not exist)."""
        return self.folder / f"{agent_id}{TOKEN_FILE_SUFFIX}"

    def publish(self, agent_id: str, token: str) -> Path:
        """Write ``agent_id``'s token file (replacing a link planted there, never following it).

        Raises:
            OSError: it could not be written.
        """
        ensure_private_dir(self.folder)
        return write_atomically(self.path(agent_id), token + "\n", mode=PRIVATE_FILE_MODE, links=Links.REPLACE)

    def refresh(self, agent_id: str, token: str) -> None:
        """Rewrite ``agent_id``'s token file with its new token, if it has one.

        Raises:
            OSError: it could not be written.
        """
        if self.path(agent_id).is_file():
            self.publish(agent_id, token)

    def remove(self, agent_id: str) -> None:
        """Delete ``agent_id``'s token file, if any."""
        with contextlib.suppress(FileNotFoundError):
            self.path(agent_id).unlink()
