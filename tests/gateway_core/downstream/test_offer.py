"""What a server is offered for an agent: the agent's own capabilities, and their union."""

from __future__ import annotations

import mcp_types as types

from gateway_core.downstream.offer import EVERYTHING, NOTHING, covers, offer_for, union

FORM_ONLY = types.ClientCapabilities(elicitation=types.ElicitationCapability(form=types.FormElicitationCapability()))
URL_ONLY = types.ClientCapabilities(elicitation=types.ElicitationCapability(url=types.UrlElicitationCapability()))
ROOTS_UNCHANGING = types.ClientCapabilities(roots=types.RootsCapability())
ROOTS_CHANGING = types.ClientCapabilities(roots=types.RootsCapability(list_changed=True))


def test_an_agent_is_offered_only_what_toolgate_forwards_of_what_it_declared() -> None:
    declared = types.ClientCapabilities(
        sampling=types.SamplingCapability(context=types.SamplingContextCapability()),
        experimental={"x": {}},
        extensions={"io.example/ext": {}},
    )

    assert offer_for(declared) == types.ClientCapabilities(sampling=declared.sampling)
    assert offer_for(None) == NOTHING


def test_the_union_of_two_offers_keeps_every_sub_capability_of_either() -> None:
    both = union(union(FORM_ONLY, URL_ONLY), ROOTS_UNCHANGING)

    assert both.model_dump(by_alias=True, exclude_none=True) == {
        "elicitation": {"form": {}, "url": {}},
        "roots": {},
    }
    assert union(ROOTS_UNCHANGING, ROOTS_CHANGING) == ROOTS_CHANGING


def test_an_offer_covers_what_it_holds_and_not_a_sub_capability_it_lacks() -> None:
    assert covers(EVERYTHING, FORM_ONLY)
    assert covers(FORM_ONLY, NOTHING)
    assert not covers(FORM_ONLY, URL_ONLY)
    assert not covers(ROOTS_UNCHANGING, ROOTS_CHANGING)
    assert covers(ROOTS_CHANGING, ROOTS_UNCHANGING)
