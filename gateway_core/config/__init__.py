"""config.json, the one source of truth for servers, agents and settings.

The model (``model``), reading and checking it (``load``), the file on disk (``files``), checked
edits (``edit``), policy warnings (``checks``) and watching it (``watch``). The names other
packages use are importable from here.
"""

from gateway_core.config.files import (
    add_agent_entry,
    default_config_data,
    ensure_config,
    put_back_agent_entry,
    read_agent_names,
    read_raw_config,
    remove_agent_entry,
    take_agent_entry,
    write_config_atomically,
)
from gateway_core.config.load import (
    NAME_PATTERN,
    NAME_RULE,
    SECRET_BLOCKS,
    SECRET_NAME_PATTERN,
    SECRET_REFERENCE,
    SecretReference,
    check_name,
    json_path,
    load_config,
    parse_config,
    secret_name,
    secret_references,
)
from gateway_core.config.model import (
    DEFAULT_PORT,
    AgentConfig,
    AuditSettings,
    Config,
    GatewaySettings,
    OAuthSettings,
    ServerConfig,
    ToolsMode,
)

__all__ = [
    "DEFAULT_PORT",
    "NAME_PATTERN",
    "NAME_RULE",
    "SECRET_BLOCKS",
    "SECRET_NAME_PATTERN",
    "SECRET_REFERENCE",
    "AgentConfig",
    "AuditSettings",
    "Config",
    "GatewaySettings",
    "OAuthSettings",
    "SecretReference",
    "ServerConfig",
    "ToolsMode",
    "add_agent_entry",
    "check_name",
    "default_config_data",
    "ensure_config",
    "json_path",
    "load_config",
    "parse_config",
    "put_back_agent_entry",
    "read_agent_names",
    "read_raw_config",
    "remove_agent_entry",
    "secret_name",
    "secret_references",
    "take_agent_entry",
    "write_config_atomically",
]
