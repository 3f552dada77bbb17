"""Turning the servers clients already have into Toolgate server entries.

``plan_import`` is pure: it decides names, what is a secret, and what is a duplicate, and returns
the entries and secrets to add; ``apply_import`` then stores the secrets and writes config.json in
one checked edit. The rules:

* The same server in several clients (same command and arguments, or same URL) becomes one entry;
  one Toolgate already has is not added again.
* A name already taken gets a suffix (``github-2``); names are made of the characters Toolgate
  allows.
* Secret-looking env and header values (tokens, keys, passwords, authorization) go to the secret
  store, and the entry holds ``${secret:SERVER.KEY}`` instead; everything else is kept as it is.
* Toolgate's own entry in a client (the shim, or a URL of this gateway) is never imported.
* An entry that runs ``mcp-remote URL`` (``mcp_remote.py``) is the remote server at URL: it is imported
  as that, with its headers and pre-registered OAuth client (secret to the store), and signs in in Toolgate.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway_core.audit.summary import is_secret_key
from gateway_core.clients.found import FoundServer, server_identity
from gateway_core.config import NAME_PATTERN, Config, ServerConfig, read_raw_config, secret_name
from gateway_core.config.edit import edit_config
from gateway_core.secrets import SecretStore

# The key under which Toolgate writes itself into a client's config.
TOOLGATE_ENTRY = "toolgate"
_NOT_IN_NAMES = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass
class ImportPlan:
    """What importing would add.

    Attributes:
        servers: new config.json server entries by name, in the order found.
        secrets: secret name → value, for the secret store.
        sources: for each new server, the client entries it comes from.
        already: client entries Toolgate already has, with the name it has them under.
        skipped: entries left out, each with the reason.
    """

    servers: dict[str, dict[str, Any]] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    sources: dict[str, list[FoundServer]] = field(default_factory=dict)
    already: list[tuple[FoundServer, str]] = field(default_factory=list)
    skipped: list[tuple[FoundServer, str]] = field(default_factory=list)


def is_secret_name(key: str) -> bool:
    """Whether an env variable or header of this name holds a secret (tokens, keys, passwords, auth)."""
    return is_secret_key(key) or key.lower().endswith("key")


def is_toolgate_entry(server: FoundServer) -> bool:
    """Whether an entry is Toolgate itself (written by ``connect``), not a server to import."""
    if server.name == TOOLGATE_ENTRY:
        return True
    command = Path(server.command).name if server.command else ""
    return command.startswith("toolgate-shim")


def plan_import(found: Iterable[FoundServer], existing: Mapping[str, ServerConfig]) -> ImportPlan:
    """Decide which entries to add for ``found``, given the servers Toolgate already has."""
    plan = ImportPlan()
    known = {server_identity(config.url, config.command, config.args): name for name, config in existing.items()}
    taken = set(existing)
    for server in found:
        if is_toolgate_entry(server):
            plan.skipped.append((server, "this is Toolgate itself"))
            continue
        same = known.get(server.identity)
        if same is not None:
            if same in plan.sources:
                plan.sources[same].append(server)
            else:
                plan.already.append((server, same))
            continue
        name = _free_name(server.name, taken)
        taken.add(name)
        known[server.identity] = name
        plan.servers[name], secrets = _entry(name, server)
        plan.secrets.update(secrets)
        plan.sources[name] = [server]
    return plan


def apply_import(plan: ImportPlan, config_path: Path, store: SecretStore) -> Config:
    """Store the plan's secrets, then add its servers to config.json in one checked edit.

    Raises:
        ConfigError: the edit would make config.json invalid (nothing is written).
        SecretError: a secret could not be stored (config.json is not touched).
    """
    for name, value in plan.secrets.items():
        store.set(name, value)

    def add(data: dict[str, Any]) -> None:
        servers = data.setdefault("servers", {})
        for name, entry in plan.servers.items():
            servers[name] = entry

    return edit_config(config_path, add)


def import_diff(plan: ImportPlan, config_path: Path) -> str:
    """The unified diff ``apply_import`` would make to config.json (secrets appear only as references)."""
    before = config_path.read_text(encoding="utf-8") if config_path.exists() else ""
    data = read_raw_config(config_path) if config_path.exists() else {}
    servers = data.setdefault("servers", {})
    for name, entry in plan.servers.items():
        servers[name] = entry
    after = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    name = str(config_path)
    return "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True), name, name))


def allowed_servers(plan: ImportPlan, client_id: str) -> list[str]:
    """The Toolgate servers a client had configured: what its agent may keep using after the import."""
    names = [name for name, sources in plan.sources.items() if any(s.client == client_id for s in sources)]
    names += [name for server, name in plan.already if server.client == client_id]
    return sorted(set(names))


def _free_name(wanted: str, taken: set[str]) -> str:
    base = _NOT_IN_NAMES.sub("-", wanted).strip("-.") or "server"
    if not base[0].isalnum():
        base = f"s{base}"
    base = base[:40]
    name, counter = base, 1
    while name in taken or not NAME_PATTERN.fullmatch(name):
        counter += 1
        name = f"{base}-{counter}"
    return name


def _entry(name: str, server: FoundServer) -> tuple[dict[str, Any], dict[str, str]]:
    """The config entry for ``server`` under ``name``, and the secrets taken out of it."""
    secrets: dict[str, str] = {}

    def keep(values: Mapping[str, str]) -> dict[str, str]:
        kept = {}
        for key, value in values.items():
            if is_secret_name(key) and value and "${secret:" not in value:
                secret = secret_name(name, key)
                secrets[secret] = value
                kept[key] = f"${{secret:{secret}}}"
            else:
                kept[key] = value
        return kept

    entry: dict[str, Any]
    if server.url is not None:
        entry = {"url": server.url}
        if server.transport == "sse":
            entry["type"] = "sse"
        if server.headers:
            entry["headers"] = keep(server.headers)
        if server.oauth:
            entry["oauth"] = _oauth(name, server.oauth, secrets)
    else:
        entry = {"command": server.command, "args": list(server.args)}
        if server.env:
            entry["env"] = keep(server.env)
    return entry, secrets


def _oauth(name: str, oauth: Mapping[str, Any], secrets: dict[str, str]) -> dict[str, Any]:
    """The ``oauth`` block for a client an ``mcp-remote`` entry names; its secret goes to the secret store."""
    block = {key: value for key, value in oauth.items() if key != "client_secret"}
    if oauth.get("client_secret"):
        secret = secret_name(name, "oauth.client_secret")
        secrets[secret] = str(oauth["client_secret"])
        block["client_secret"] = f"${{secret:{secret}}}"
    return block
