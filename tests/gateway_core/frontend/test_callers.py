"""Which questions an agent may be asked, by the capabilities it advertised."""

from __future__ import annotations

import mcp_types as types
import pytest

from gateway_core.frontend.callers import interactive, supports, unsupported

FORM = types.ElicitRequest(params=types.ElicitRequestFormParams(message="?", requested_schema={"type": "object"}))
URL = types.ElicitRequest(
    params=types.ElicitRequestURLParams(message="sign in", url="https://example.invalid", elicitation_id="1")
)
SAMPLE = types.CreateMessageRequest(params=types.CreateMessageRequestParams(messages=[], max_tokens=1))
ROOTS = types.ListRootsRequest()


@pytest.mark.parametrize(
    ("capabilities", "allowed"),
    [
        (None, set()),
        (types.ClientCapabilities(), set()),
        (types.ClientCapabilities(elicitation=types.ElicitationCapability()), {"form"}),
        (
            types.ClientCapabilities(elicitation=types.ElicitationCapability(form=types.FormElicitationCapability())),
            {"form"},
        ),
        (
            types.ClientCapabilities(elicitation=types.ElicitationCapability(url=types.UrlElicitationCapability())),
            {"url"},
        ),
        (types.ClientCapabilities(sampling=types.SamplingCapability()), {"sample"}),
        (types.ClientCapabilities(roots=types.RootsCapability()), {"roots"}),
    ],
)
def test_an_agent_is_asked_only_what_its_capabilities_cover(capabilities, allowed):
    questions = {"form": FORM, "url": URL, "sample": SAMPLE, "roots": ROOTS}

    assert {name for name, question in questions.items() if supports(capabilities, question)} == allowed
    assert interactive(capabilities) == bool(allowed)


def test_the_refusal_names_the_agent_and_the_missing_capability():
    assert unsupported("cursor", URL).message == (
        "agent 'cursor' does not support URL elicitation: it did not advertise that capability"
    )
    assert unsupported("cursor", SAMPLE).code == types.INVALID_REQUEST


def test_a_2026_agents_refusal_is_the_spec_error_naming_the_capability_it_lacks():
    refused = {
        name: unsupported("cursor", question, modern=True)
        for name, question in {"url": URL, "sample": SAMPLE, "roots": ROOTS}.items()
    }

    assert {error.code for error in refused.values()} == {types.MISSING_REQUIRED_CLIENT_CAPABILITY}
    assert refused["url"].data == {"requiredCapabilities": {"elicitation": {"url": {}}}}
    assert refused["sample"].data == {"requiredCapabilities": {"sampling": {}}}
    assert refused["roots"].data == {"requiredCapabilities": {"roots": {}}}
