"""What Toolgate tells a server it can do as a client: the capabilities it offers.

A shared server is offered everything an agent might answer (``EVERYTHING``); whether the agent
behind a call can answer is checked per question. An agent's own process of a ``per_agent`` server
is offered what that agent declared (``offer_for``), so it behaves as it would for the agent directly.
``OfferingSession`` is the SDK session that says exactly that, in both protocol eras.
"""

from __future__ import annotations

from typing import Any

import mcp_types as types
from mcp.client.session import ClientSession

EVERYTHING = types.ClientCapabilities(
    sampling=types.SamplingCapability(context=types.SamplingContextCapability(), tools=types.SamplingToolsCapability()),
    elicitation=types.ElicitationCapability(
        form=types.FormElicitationCapability(), url=types.UrlElicitationCapability()
    ),
    roots=types.RootsCapability(list_changed=True),
)
"""Every question Toolgate can put to an agent, with every sub-capability (what the SDK would offer)."""

NOTHING = types.ClientCapabilities()


def offer_for(declared: types.ClientCapabilities | None) -> types.ClientCapabilities:
    """What to offer a server for an agent that ``declared`` these capabilities.

    Only what Toolgate forwards is kept (sampling, elicitation and roots, with their
    sub-capabilities); experimental and extension capabilities concern the agent's own hop.
    """
    if declared is None:
        return NOTHING
    return types.ClientCapabilities(sampling=declared.sampling, elicitation=declared.elicitation, roots=declared.roots)


def covers(offer: types.ClientCapabilities, wanted: types.ClientCapabilities) -> bool:
    """Whether ``offer`` already holds every capability and sub-capability in ``wanted``."""
    return _merged(_wire(offer), _wire(wanted)) == _wire(offer)


def union(a: types.ClientCapabilities, b: types.ClientCapabilities) -> types.ClientCapabilities:
    """Every capability and sub-capability of ``a`` or ``b``."""
    return types.ClientCapabilities.model_validate(_merged(_wire(a), _wire(b)))


def _wire(capabilities: types.ClientCapabilities) -> dict[str, Any]:
    return capabilities.model_dump(by_alias=True, mode="json", exclude_none=True)


def _merged(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    merged = dict(a)
    for key, value in b.items():
        mine = merged.get(key)
        if isinstance(mine, dict) and isinstance(value, dict):
            merged[key] = _merged(mine, value)
        elif mine is None or (mine is False and value is True):
            merged[key] = value
    return merged


class OfferingSession(ClientSession):
    """A ``ClientSession`` that offers the server exactly ``offer``.

    The SDK derives its offer from which callbacks it is given, always with every sub-capability
    (both elicitation modes, roots ``listChanged``); Toolgate gives every callback (a question
    the agent cannot answer is refused per question) and says what it offers here instead.
    """

    def __init__(self, *args: Any, offer: types.ClientCapabilities, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._offer = offer

    def _build_capabilities(self, version: str) -> types.ClientCapabilities:
        return self._offer
