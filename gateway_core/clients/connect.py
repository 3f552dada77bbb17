"""Writing Toolgate into a client's config file, and taking it out again.

Every write is a ``Change``: the file's text before and after, computed first (so ``--dry-run`` can
show the diff and nothing is touched), then applied with a timestamped backup of the old bytes and
an atomic replace. Only Toolgate's entry (and, when asked, the entries of servers Toolgate now
provides) changes; everything else in the file keeps its bytes, comments included. A file that
cannot be parsed is never written.

``disconnect`` puts the backup back when the file is exactly as Toolgate left it; when the person
(or the IDE) changed it since, only Toolgate's entry is removed.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway_core.audit.summary import redact_text
from gateway_core.clients import jsonc, toml_edit
from gateway_core.clients.found import ClientConfigError, ConfigFile
from gateway_core.clients.importer import TOOLGATE_ENTRY
from gateway_core.clients.table import Client
from gateway_core.files import Links, create_exclusively, write_atomically
from gateway_core.paths import ensure_private_dir
from gateway_core.shim.cli import TOKEN_ENV

MANIFEST = "connections.json"
# Backups are named by the second; more connects than this in one second are refused.
MAX_BACKUPS_PER_SECOND = 100


@dataclass(frozen=True)
class Change:
    """One planned edit of one client file: its text before (None: no file yet) and after."""

    file: ConfigFile
    before: str | None
    after: str | None

    @property
    def changes_anything(self) -> bool:
        """Whether applying it would change the file."""
        return self.before != self.after

    def diff(self) -> str:
        """The unified diff applying it would make, with tokens and keys masked (it is shown and printed)."""
        name = str(self.file.path)
        lines = difflib.unified_diff(
            (self.before or "").splitlines(keepends=True),
            (self.after or "").splitlines(keepends=True),
            fromfile=name if self.before is not None else "/dev/null",
            tofile=name if self.after is not None else "/dev/null",
        )
        return "".join(_masked(line) for line in lines)


def _masked(line: str) -> str:
    """A diff line with token- and key-looking values redacted; its marker and line end kept."""
    if line.startswith(("---", "+++", "@@")):
        return line
    body = line[1:].rstrip("\r\n")
    return line[0] + redact_text(body) + line[1 + len(body) :]


def toolgate_entry(
    client: Client, *, http: bool, url: str, agent_id: str, token: str | None, shim_command: str
) -> dict[str, Any]:
    """Toolgate's entry in ``client``'s words: the endpoint with a bearer token, or the shim.

    ``token`` None is for a file other people see (a project's): the shim entry then names only the
    agent, and the shim reads the token from the agent's token file in Toolgate's own folder.

    Raises:
        ValueError: ``http`` was asked for a client that cannot use an HTTP entry, or without a token.
    """
    require_entry_style(client, http=http, shared=token is None)
    if http:
        assert token is not None
        return client.style.http(url, {"Authorization": f"Bearer {token}"})
    env = {} if token is None else {TOKEN_ENV: token}
    return client.style.stdio(shim_command, ["--agent", agent_id], env)


def require_entry_style(client: Client, *, http: bool, shared: bool = False) -> None:
    """Refuse an HTTP entry for a client that cannot use one, or in a file other people see.

    Raises:
        ValueError: ``http`` was asked for a client without HTTP entries, or for a ``shared`` file.
    """
    if http and shared:
        raise ValueError(
            f"an HTTP entry would put the agent's bearer token into {client.name}'s project file, which is "
            "shared with everyone who gets the project; connect it with the shim (--stdio, the default "
            "for a project: the token stays in Toolgate's own folder) or without --project"
        )
    if http and not client.supports_http:
        raise ValueError(f"{client.name} cannot use an HTTP entry; connect it with the shim (--stdio)")


def read_text(file: ConfigFile) -> str | None:
    """The file's text, or None when it does not exist.

    Raises:
        ClientConfigError: it exists but cannot be read.
    """
    try:
        return file.path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ClientConfigError(f"{file.path}: cannot be read: {exc}") from exc


def connect_change(file: ConfigFile, entry: Mapping[str, Any], *, remove: Iterable[str] = ()) -> Change:
    """Toolgate's entry set in ``file`` (and the servers named in ``remove`` taken out).

    Raises:
        ClientConfigError: the file cannot be read or parsed; nothing would be written.
    """
    before = read_text(file)
    text = before or ""
    try:
        after = _set(file.client, text, entry)
        for name in remove:
            if name != TOOLGATE_ENTRY:
                after = _remove(file.client, after, name)
    except (jsonc.JsoncError, toml_edit.TomlEditError) as exc:
        raise ClientConfigError(f"{file.path}: {exc}; fix the file or connect by hand") from exc
    return Change(file, before, after)


def disconnect_change(file: ConfigFile, backups: Path) -> Change:
    """What disconnecting ``file`` would do: restore the backup, or remove only Toolgate's entry.

    Raises:
        ClientConfigError: the file cannot be read or parsed.
    """
    before = read_text(file)
    record = _manifest(backups).get(str(file.path))
    if record is not None and before is not None and _digest(before) == record["written"]:
        backup = record.get("backup")
        restored = Path(backup).read_text(encoding="utf-8") if backup else None
        return Change(file, before, restored)
    if before is None:
        return Change(file, None, None)
    try:
        return Change(file, before, _remove(file.client, before, TOOLGATE_ENTRY))
    except (jsonc.JsoncError, toml_edit.TomlEditError) as exc:
        raise ClientConfigError(f"{file.path}: {exc}; remove the {TOOLGATE_ENTRY!r} entry by hand") from exc


def apply_change(change: Change, backups: Path, *, connecting: bool) -> Path | None:
    """Write ``change``: back up the current bytes first, then replace the file atomically.

    ``connecting`` records what was written, so ``disconnect`` can tell whether the file changed
    since; disconnecting forgets that record. Returns the backup's path (None when there was no file).

    Raises:
        ClientConfigError: the file changed since the change was computed, or cannot be written.
    """
    if read_text(change.file) != change.before:
        raise ClientConfigError(f"{change.file.path} changed while Toolgate was editing it; nothing was written")
    _refuse_a_linked_project_file(change.file)
    try:
        backup = _back_up(change, backups)
        if change.after is None:
            change.file.path.unlink(missing_ok=True)
        else:
            path = change.file.path
            path.parent.mkdir(parents=True, exist_ok=True)
            # A person may link a user-scope file to their dotfiles; keep its permissions either way.
            write_atomically(path, change.after, mode=None, links=Links.FOLLOW)
    except OSError as exc:
        raise ClientConfigError(f"{change.file.path}: cannot be written: {exc.strerror or exc}") from exc
    manifest = _manifest(backups)
    key = str(change.file.path)
    if connecting:
        earlier = manifest.get(key)
        # A second connect keeps the first backup: disconnect goes back to before Toolgate.
        first = earlier["backup"] if earlier else (str(backup) if backup else None)
        manifest[key] = {"client": change.file.client.id, "backup": first, "written": _digest(change.after or "")}
    else:
        manifest.pop(key, None)
    try:
        ensure_private_dir(backups)
        write_atomically(backups / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    except OSError as exc:
        raise ClientConfigError(f"{backups / MANIFEST}: cannot be written: {exc.strerror or exc}") from exc
    return backup


def _set(client: Client, text: str, entry: Mapping[str, Any]) -> str:
    if client.format == "toml":
        return toml_edit.set_server(text, TOOLGATE_ENTRY, entry)
    return jsonc.set_member(text, list(client.servers_key), TOOLGATE_ENTRY, dict(entry))


def _remove(client: Client, text: str, name: str) -> str:
    if client.format == "toml":
        return toml_edit.remove_server(text, name)
    return jsonc.remove_member(text, list(client.servers_key), name)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _manifest(backups: Path) -> dict[str, Any]:
    try:
        data = json.loads((backups / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _back_up(change: Change, backups: Path) -> Path | None:
    if change.before is None:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = backups / change.file.client.id
    ensure_private_dir(folder)
    content = change.file.path.read_bytes()
    for counter in range(1, MAX_BACKUPS_PER_SECOND + 1):
        suffix = "" if counter == 1 else f"-{counter}"
        target = folder / f"{change.file.path.name}.{stamp}{suffix}.bak"
        try:
            create_exclusively(target, content)  # mode 0600: it may hold the client's secrets
        except FileExistsError:
            continue
        return target
    raise OSError(f"{folder} already has {MAX_BACKUPS_PER_SECOND} backups from this second")


def _refuse_a_linked_project_file(file: ConfigFile) -> None:
    """A project folder may come from anyone (a cloned repository): never write through a link there."""
    if file.scope == "project" and file.path.is_symlink():
        raise ClientConfigError(
            f"{file.path} is a symbolic link to {os.path.realpath(file.path)}; Toolgate does not write through "
            "links in a project folder (a repository can carry one). Replace it with a regular file, or connect "
            "the client at user scope; nothing was written"
        )
