"""Toolgate's gateway core: everything that is not GUI. ``app/`` imports only what is listed here.

Names are loaded on first use, so importing ``gateway_core`` (as the stdlib-only shim does) costs
nothing; only the modules behind the names you touch are imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway_core.agents import AgentDirectory, AgentInfo
    from gateway_core.config import Config, load_config, parse_config
    from gateway_core.downstream.base import ServerState, ServerStatus
    from gateway_core.errors import (
        AgentError,
        ConfigError,
        ErrorCode,
        InstanceError,
        MissingSecretError,
        SecretError,
        ToolgateError,
    )
    from gateway_core.gateway import Endpoint, Gateway, bind
    from gateway_core.instance import InstanceLock
    from gateway_core.paths import Paths
    from gateway_core.secrets import SecretStore, open_secret_store, resolve
    from gateway_core.version import toolgate_version

_EXPORTS = {
    "AgentDirectory": "gateway_core.agents",
    "AgentInfo": "gateway_core.agents",
    "Config": "gateway_core.config",
    "load_config": "gateway_core.config",
    "parse_config": "gateway_core.config",
    "ServerState": "gateway_core.downstream.base",
    "ServerStatus": "gateway_core.downstream.base",
    "AgentError": "gateway_core.errors",
    "ConfigError": "gateway_core.errors",
    "ErrorCode": "gateway_core.errors",
    "InstanceError": "gateway_core.errors",
    "MissingSecretError": "gateway_core.errors",
    "SecretError": "gateway_core.errors",
    "ToolgateError": "gateway_core.errors",
    "Endpoint": "gateway_core.gateway",
    "Gateway": "gateway_core.gateway",
    "bind": "gateway_core.gateway",
    "InstanceLock": "gateway_core.instance",
    "Paths": "gateway_core.paths",
    "SecretStore": "gateway_core.secrets",
    "open_secret_store": "gateway_core.secrets",
    "resolve": "gateway_core.secrets",
    "toolgate_version": "gateway_core.version",
}

__all__ = [
    "AgentDirectory",
    "AgentError",
    "AgentInfo",
    "Config",
    "ConfigError",
    "Endpoint",
    "ErrorCode",
    "Gateway",
    "InstanceError",
    "InstanceLock",
    "MissingSecretError",
    "Paths",
    "SecretError",
    "SecretStore",
    "ServerState",
    "ServerStatus",
    "ToolgateError",
    "bind",
    "load_config",
    "open_secret_store",
    "parse_config",
    "resolve",
    "toolgate_version",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gateway_core' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
