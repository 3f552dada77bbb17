"""Toolgate's error hierarchy and the JSON-RPC error codes an agent may see.

    ToolgateError
    ├── ConfigError            config.json cannot be read or is invalid (carries every problem found)
    ├── SecretError            the secret store cannot be read or written
    │   └── MissingSecretError a ``${secret:NAME}`` reference names a secret that is not stored
    ├── AgentError             an agent id is unknown, taken, or malformed
    ├── InstanceError          another Toolgate already owns this TOOLGATE_HOME or port
    ├── ApprovalError          an approval answer names no pending request  (gateway_core.approvals)
    ├── ControlError           the local control channel cannot be used     (gateway_core.control_file)
    │   └── NotRunningError    no gateway runs for this TOOLGATE_HOME
    ├── SignInError            a sign-in to a remote server did not complete (gateway_core.downstream.sign_in)
    └── DownstreamError        a configured MCP server could not serve a request
        ├── ServerUnavailableError   the server is not ready (starting, failed, stopped)
        └── DownstreamTimeoutError   the server did not answer within its ``timeout_s``

Foreign errors (SDK, OS, HTTP client) are translated at the boundary with ``raise X(...) from exc``.
What reaches an MCP client is chosen on purpose: never a stack trace or an internal exception text.
"""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    """JSON-RPC error codes Toolgate uses in responses to agents (the implementation-defined -32000 range)."""

    DENIED_BY_POLICY = -32000
    SERVER_UNAVAILABLE = -32001
    TOOL_NOT_FOUND = -32002
    INVALID_AGENT = -32003
    TIMEOUT = -32004
    RESOURCE_NOT_FOUND = -32005
    PROMPT_NOT_FOUND = -32006
    TOO_MANY_REQUESTS = -32007


class ToolgateError(Exception):
    """Base of every error Toolgate raises on purpose."""


class ConfigError(ToolgateError):
    """The configuration cannot be used.

    Args:
        problems: one human sentence per problem, each naming the file, the JSON path, what was
            expected and what was found.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class SecretError(ToolgateError):
    """The secret store cannot be read or written."""


class MissingSecretError(SecretError):
    """A ``${secret:NAME}`` reference names a secret that is not in the store."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"secret {name!r} is not in the secret store; add it with `toolgate secrets set {name}`")


class AgentError(ToolgateError):
    """An agent id is unknown, already taken, or not a valid id."""


class InstanceError(ToolgateError):
    """Another Toolgate already owns this TOOLGATE_HOME, or the port is taken."""


class DownstreamError(ToolgateError):
    """A configured MCP server could not serve a request."""

    code: ErrorCode = ErrorCode.SERVER_UNAVAILABLE


class ServerUnavailableError(DownstreamError):
    """The server is not ready: it is starting, has failed, or is stopped."""

    code = ErrorCode.SERVER_UNAVAILABLE


class DownstreamTimeoutError(DownstreamError):
    """The server did not answer within its ``timeout_s``."""

    code = ErrorCode.TIMEOUT
