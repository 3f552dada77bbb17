"""Import and connect as one person-sized step each, for the CLI and the tray app alike.

``Clients`` knows Toolgate's own files (config.json, the secret store, the backups folder) and turns
a client id into the plan or the change to show, and then applies it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gateway_core.agents import AgentDirectory
from gateway_core.clients.connect import (
    Change,
    apply_change,
    connect_change,
    disconnect_change,
    require_entry_style,
    toolgate_entry,
)
from gateway_core.clients.found import ClientConfigError, ConfigFile, FoundServer, config_files, installed, read_servers
from gateway_core.clients.importer import ImportPlan, allowed_servers, apply_import, import_diff, plan_import
from gateway_core.clients.shim_path import shim_command
from gateway_core.clients.table import Client, client
from gateway_core.config import Config, ensure_config, load_config
from gateway_core.config.edit import set_agent_rule
from gateway_core.paths import Paths
from gateway_core.policy import Effect, RuleSource
from gateway_core.secrets import SecretStore, open_secret_store
from gateway_core.token_files import TokenFiles

BACKUPS_FOLDER = "client-backups"
# Stands in for the token a dry run would create; diffs mask an HTTP entry's bearer value whatever it is.
DRY_RUN_TOKEN = "<token-of-agent-{}>"


@dataclass(frozen=True)
class Installed:
    """One installed client's config file, with its servers or the reason it cannot be read."""

    file: ConfigFile
    servers: tuple[FoundServer, ...]
    notes: tuple[str, ...]
    problem: str | None
    connected: bool


class Clients:
    """The client operations on Toolgate's files.

    Args:
        paths: where Toolgate's files live.
        store: the secret store (opened on first use when None).
    """

    def __init__(self, paths: Paths, store: SecretStore | None = None) -> None:
        self._paths = paths
        self._store = store

    @property
    def backups(self) -> Path:
        """Where the files' earlier versions are kept."""
        return self._paths.state_dir / BACKUPS_FOLDER

    def installed(self, project: Path | None = None) -> list[Installed]:
        """Every installed client file with its servers (a broken file says why)."""
        found = []
        for file in installed(project=project):
            try:
                servers, notes = read_servers(file)
            except ClientConfigError as exc:
                found.append(Installed(file, (), (), str(exc), False))
                continue
            connected = any(server.name == "toolgate" for server in servers)
            found.append(Installed(file, tuple(servers), tuple(notes), None, connected))
        return found

    def file(self, client_id: str, project: Path | None = None) -> ConfigFile:
        """The client's project file when ``project`` is given, else its user file.

        Raises:
            KeyError: unknown client.
            ClientConfigError: the client has no file of that scope.
        """
        chosen = client(client_id)
        wanted = "project" if project is not None else "user"
        for file in config_files(chosen, project=project):
            if file.scope == wanted:
                return file
        hint = "try without --project" if project is not None else "try with --project DIR"
        raise ClientConfigError(f"{chosen.name} has no {wanted} config file; {hint}")

    def plan_import(self, client_id: str, project: Path | None = None) -> ImportPlan:
        """What importing the client's servers would add.

        Raises:
            ClientConfigError: the client's file is missing or cannot be parsed.
            ConfigError: config.json is invalid.
        """
        file = self.file(client_id, project)
        if not file.path.is_file():
            raise ClientConfigError(f"{file.client.name} has no config file at {file.path}")
        servers, _ = read_servers(file)
        return plan_import(servers, self.config().servers)

    def apply_import(self, plan: ImportPlan) -> Config:
        """Store the plan's secrets and add its servers to config.json."""
        return apply_import(plan, self._config_path(), self.store)

    def import_diff(self, plan: ImportPlan) -> str:
        """The diff ``apply_import`` would make to config.json."""
        return import_diff(plan, self._config_path())

    def derive_policy(self, client_id: str, plan: ImportPlan) -> list[str]:
        """Allow the client's agent the servers the client had (creating the agent if need be).

        Everything else stays at the agent's default, so nothing the IDE could do before is lost
        and nothing new is granted. Each rule written records the import as its source (``toolgate
        agents rules`` says *imported from CLIENT at TIME*); a plain allow already there is left as it is.
        Returns the rules' matches (``server/*``).
        """
        chosen = client(client_id)
        self._agent_token(chosen)
        matches = [f"{name}/*" for name in allowed_servers(plan, client_id)]
        agent = self.config().agents.get(chosen.id)
        already = {
            rule.match
            for rule in (agent.rules if agent is not None else ())
            if rule.effect is Effect.ALLOW and rule.annotations is None and rule.when is None and rule.expires is None
        }
        source = RuleSource(imported=chosen.id, at=datetime.now(UTC))
        for match in matches:
            if match not in already:
                set_agent_rule(self._config_path(), chosen.id, match, Effect.ALLOW, source=source)
        return matches

    def connect_change(
        self,
        client_id: str,
        *,
        http: bool | None = None,
        remove_imported: bool = False,
        project: Path | None = None,
        dry_run: bool = False,
    ) -> Change:
        """The change connecting the client would make; its agent is created unless ``dry_run``.

        ``http``: None picks HTTP where the client has it, else the shim. A project's file is shared
        with everyone who gets the project, so it gets the shim entry without the token (the shim
        reads the agent's token file, which ``apply`` writes).

        Raises:
            ValueError: HTTP was asked for a client that cannot use it, or for a project's file.
            ClientConfigError: the client's file cannot be parsed.
        """
        file = self.file(client_id, project)
        config = self.config()
        shared = file.scope == "project"
        use_http = (file.client.supports_http and not shared) if http is None else http
        require_entry_style(file.client, http=use_http, shared=shared)  # before an agent is created for nothing
        token = DRY_RUN_TOKEN.format(file.client.id) if dry_run else self._agent_token(file.client)
        entry = toolgate_entry(
            file.client,
            http=use_http,
            url=f"http://{config.gateway.host}:{config.gateway.port}/mcp",
            agent_id=file.client.id,
            token=None if shared else token,
            shim_command=shim_command(),
        )
        remove = self._provided_by_toolgate(file, config) if remove_imported else []
        return connect_change(file, entry, remove=remove)

    def disconnect_change(self, client_id: str, project: Path | None = None) -> Change:
        """The change disconnecting the client would make (back to its backup, or just the entry out)."""
        return disconnect_change(self.file(client_id, project), self.backups)

    def apply(self, change: Change, *, connecting: bool) -> Path | None:
        """Write a change with a backup first; returns the backup's path.

        Connecting a project's file first writes the agent's token file its shim entry reads.

        Raises:
            ClientConfigError: a file could not be written.
        """
        if connecting:
            self.publish_token_file(change)
        return apply_change(change, self.backups, connecting=connecting)

    def publish_token_file(self, change: Change) -> None:
        """Write the token file a project file's shim entry reads (also when the entry was already there).

        Raises:
            ClientConfigError: it could not be written.
        """
        if change.file.scope != "project":
            return
        chosen = change.file.client
        token = self._agent_token(chosen)
        try:
            self.token_files.publish(chosen.id, token)
        except OSError as exc:
            path = self.token_files.path(chosen.id)
            raise ClientConfigError(f"{path}: the agent's token file cannot be written: {exc.strerror or exc}") from exc

    @property
    def token_files(self) -> TokenFiles:
        """The agents' token files, which shim entries in project files read."""
        return TokenFiles.of(self._paths)

    def config(self) -> Config:
        """config.json as it is now."""
        return load_config(self._config_path())

    @property
    def store(self) -> SecretStore:
        """The secret store."""
        if self._store is None:
            self._store = open_secret_store(self._paths)
        return self._store

    def _config_path(self) -> Path:
        path, _ = ensure_config(self._paths)
        return path

    def _agent_token(self, chosen: Client) -> str:
        """The token of the client's agent, creating the agent (named after the client) if need be."""
        directory = AgentDirectory(self._config_path(), self.store, token_files=self.token_files)
        token = directory.token(chosen.id)
        return token if token is not None else directory.add(chosen.id, chosen.name)

    @staticmethod
    def _provided_by_toolgate(file: ConfigFile, config: Config) -> list[str]:
        if not file.path.is_file():
            return []
        servers, _ = read_servers(file)
        return [server.name for server, _name in plan_import(servers, config.servers).already]
