"""Toolgate's gateway core: everything that is not GUI. ``app/`` imports only what is listed here.

Names are loaded on first use, so importing ``gateway_core`` (as the stdlib-only shim does) costs
nothing; only the modules behind the names you touch are imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway_core.agent_tokens import AgentTokens
    from gateway_core.agents import AgentDirectory, AgentInfo
    from gateway_core.api import GatewayApi, LocalGateway
    from gateway_core.approvals import (
        Answer,
        ApprovalBroker,
        ApprovalError,
        ApprovalEvent,
        ApprovalRequest,
        ApprovalRequested,
        ApprovalResolved,
        BadDuration,
        Outcome,
        Resolution,
        until_tomorrow,
    )
    from gateway_core.audit import AuditLog, AuditQuery, AuditRecord, AuditStatus, CallOutcome, RecordKind
    from gateway_core.clients.service import Clients
    from gateway_core.clients.shim_path import shim_command
    from gateway_core.clients.table import CLIENTS
    from gateway_core.conditions import folder_suggestion
    from gateway_core.config import (
        Config,
        ServerConfig,
        ToolsMode,
        ensure_config,
        load_config,
        parse_config,
        secret_name,
    )
    from gateway_core.config.edit import (
        check_server_entry,
        put_server,
        remove_server,
        rename_agent,
        set_agent_default,
        set_agent_rule,
        set_gateway_settings,
        set_server_enabled,
    )
    from gateway_core.downstream.base import Catalog, ServerState, ServerStatus
    from gateway_core.downstream.sign_in import SIGN_IN_TIMEOUT_S, SignedIn, SignInDetails, SignInError
    from gateway_core.errors import (
        AgentError,
        ConfigError,
        ErrorCode,
        InstanceError,
        MissingSecretError,
        SecretError,
        ToolgateError,
    )
    from gateway_core.events import (
        CallsRecorded,
        CatalogChanged,
        ConfigApplied,
        ConfigRejected,
        Event,
        EventLogHandler,
        EventStream,
        LogMessage,
        NamesChanged,
        PausedChanged,
        ServerStatusChanged,
        SessionEnded,
        StderrLine,
    )
    from gateway_core.files import Links, atomic_file, write_atomically
    from gateway_core.frontend.listen import bind
    from gateway_core.frontend.listing_size import ListingSize, ListingSizes
    from gateway_core.frontend.routing import NameKind, PublicName, Renaming
    from gateway_core.gateway import Endpoint, Gateway
    from gateway_core.instance import InstanceLock
    from gateway_core.launch.environment import LaunchEnvironment, resolve_launch_environment
    from gateway_core.paths import Paths
    from gateway_core.policy import AgentPolicy, Decision, Effect, Rule, literal_match
    from gateway_core.secrets import SecretStore, open_secret_store, resolve
    from gateway_core.token_files import TokenFiles
    from gateway_core.version import toolgate_version

_EXPORTS = {
    "literal_match": "gateway_core.policy",
    "CallsRecorded": "gateway_core.events",
    "CatalogChanged": "gateway_core.events",
    "NamesChanged": "gateway_core.events",
    "PausedChanged": "gateway_core.events",
    "NameKind": "gateway_core.frontend.routing",
    "PublicName": "gateway_core.frontend.routing",
    "Renaming": "gateway_core.frontend.routing",
    "ConfigApplied": "gateway_core.events",
    "ConfigRejected": "gateway_core.events",
    "Event": "gateway_core.events",
    "EventLogHandler": "gateway_core.events",
    "EventStream": "gateway_core.events",
    "LogMessage": "gateway_core.events",
    "ServerStatusChanged": "gateway_core.events",
    "SessionEnded": "gateway_core.events",
    "StderrLine": "gateway_core.events",
    "GatewayApi": "gateway_core.api",
    "LocalGateway": "gateway_core.api",
    "Links": "gateway_core.files",
    "atomic_file": "gateway_core.files",
    "write_atomically": "gateway_core.files",
    "ServerConfig": "gateway_core.config",
    "ToolsMode": "gateway_core.config",
    "RecordKind": "gateway_core.audit",
    "CallOutcome": "gateway_core.audit",
    "Outcome": "gateway_core.approvals",
    "ApprovalEvent": "gateway_core.approvals",
    "ensure_config": "gateway_core.config",
    "set_gateway_settings": "gateway_core.config.edit",
    "rename_agent": "gateway_core.config.edit",
    "set_agent_rule": "gateway_core.config.edit",
    "set_agent_default": "gateway_core.config.edit",
    "set_server_enabled": "gateway_core.config.edit",
    "remove_server": "gateway_core.config.edit",
    "put_server": "gateway_core.config.edit",
    "check_server_entry": "gateway_core.config.edit",
    "Catalog": "gateway_core.downstream.base",
    "AgentDirectory": "gateway_core.agents",
    "AgentTokens": "gateway_core.agent_tokens",
    "AgentError": "gateway_core.errors",
    "AgentInfo": "gateway_core.agents",
    "AgentPolicy": "gateway_core.policy",
    "Answer": "gateway_core.approvals",
    "folder_suggestion": "gateway_core.conditions",
    "BadDuration": "gateway_core.approvals",
    "until_tomorrow": "gateway_core.approvals",
    "ApprovalBroker": "gateway_core.approvals",
    "ApprovalError": "gateway_core.approvals",
    "ApprovalRequest": "gateway_core.approvals",
    "ApprovalRequested": "gateway_core.approvals",
    "ApprovalResolved": "gateway_core.approvals",
    "AuditLog": "gateway_core.audit",
    "AuditQuery": "gateway_core.audit",
    "AuditRecord": "gateway_core.audit",
    "AuditStatus": "gateway_core.audit",
    "Config": "gateway_core.config",
    "ConfigError": "gateway_core.errors",
    "Decision": "gateway_core.policy",
    "Effect": "gateway_core.policy",
    "Endpoint": "gateway_core.gateway",
    "ErrorCode": "gateway_core.errors",
    "Gateway": "gateway_core.gateway",
    "InstanceError": "gateway_core.errors",
    "InstanceLock": "gateway_core.instance",
    "LaunchEnvironment": "gateway_core.launch.environment",
    "resolve_launch_environment": "gateway_core.launch.environment",
    "MissingSecretError": "gateway_core.errors",
    "Paths": "gateway_core.paths",
    "TokenFiles": "gateway_core.token_files",
    "Resolution": "gateway_core.approvals",
    "Rule": "gateway_core.policy",
    "SecretError": "gateway_core.errors",
    "SecretStore": "gateway_core.secrets",
    "ServerState": "gateway_core.downstream.base",
    "ServerStatus": "gateway_core.downstream.base",
    "SignedIn": "gateway_core.downstream.sign_in",
    "SIGN_IN_TIMEOUT_S": "gateway_core.downstream.sign_in",
    "SignInDetails": "gateway_core.downstream.sign_in",
    "SignInError": "gateway_core.downstream.sign_in",
    "ToolgateError": "gateway_core.errors",
    "bind": "gateway_core.frontend.listen",
    "ListingSize": "gateway_core.frontend.listing_size",
    "ListingSizes": "gateway_core.frontend.listing_size",
    "load_config": "gateway_core.config",
    "open_secret_store": "gateway_core.secrets",
    "parse_config": "gateway_core.config",
    "resolve": "gateway_core.secrets",
    "toolgate_version": "gateway_core.version",
    "shim_command": "gateway_core.clients.shim_path",
    "secret_name": "gateway_core.config",
    "CLIENTS": "gateway_core.clients.table",
    "Clients": "gateway_core.clients.service",
}

__all__ = [
    "AgentDirectory",
    "AgentError",
    "AgentInfo",
    "AgentPolicy",
    "AgentTokens",
    "Answer",
    "ApprovalBroker",
    "ApprovalError",
    "ApprovalEvent",
    "ApprovalRequest",
    "ApprovalRequested",
    "ApprovalResolved",
    "AuditLog",
    "AuditQuery",
    "AuditRecord",
    "AuditStatus",
    "BadDuration",
    "CLIENTS",
    "CallOutcome",
    "CallsRecorded",
    "Catalog",
    "CatalogChanged",
    "Clients",
    "Config",
    "ConfigApplied",
    "ConfigError",
    "ConfigRejected",
    "Decision",
    "Effect",
    "Endpoint",
    "ErrorCode",
    "Event",
    "EventLogHandler",
    "EventStream",
    "Gateway",
    "GatewayApi",
    "InstanceError",
    "InstanceLock",
    "LaunchEnvironment",
    "Links",
    "ListingSize",
    "ListingSizes",
    "LocalGateway",
    "LogMessage",
    "MissingSecretError",
    "NameKind",
    "NamesChanged",
    "Outcome",
    "Paths",
    "PausedChanged",
    "PublicName",
    "RecordKind",
    "Renaming",
    "Resolution",
    "Rule",
    "SIGN_IN_TIMEOUT_S",
    "SecretError",
    "SecretStore",
    "ServerConfig",
    "ServerState",
    "ServerStatus",
    "ServerStatusChanged",
    "SessionEnded",
    "SignInDetails",
    "SignInError",
    "SignedIn",
    "StderrLine",
    "TokenFiles",
    "ToolgateError",
    "ToolsMode",
    "atomic_file",
    "bind",
    "check_server_entry",
    "ensure_config",
    "folder_suggestion",
    "literal_match",
    "load_config",
    "open_secret_store",
    "parse_config",
    "put_server",
    "remove_server",
    "rename_agent",
    "resolve",
    "resolve_launch_environment",
    "secret_name",
    "set_agent_default",
    "set_agent_rule",
    "set_gateway_settings",
    "set_server_enabled",
    "shim_command",
    "toolgate_version",
    "until_tomorrow",
    "write_atomically",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gateway_core' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
