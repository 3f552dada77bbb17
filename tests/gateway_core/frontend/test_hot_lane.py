"""The hot lane's request: its headers read exactly as starlette reads them, only found in one step."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from gateway_core.frontend.hot_lane import IndexedHeaders

RAW = [
    (b"host", b"127.0.0.1:8000"),
    (b"mcp-session-id", b"first"),
    (b"accept", b"application/json, text/event-stream"),
    (b"mcp-session-id", b"second"),
    (b"x-latin", "caf\u00e9".encode("latin-1")),
]
NAMES = ["host", "Mcp-Session-Id", "MCP-SESSION-ID", "accept", "x-latin", "origin", "mcp-protocol-version"]


@pytest.mark.parametrize("name", NAMES)
def test_a_header_is_read_as_starlette_reads_it_the_first_of_its_name_whatever_its_case(name: str):
    starlette, indexed = Headers(scope={"headers": list(RAW)}), IndexedHeaders({"headers": list(RAW)})

    assert indexed.get(name) == starlette.get(name)
    assert indexed.get(name, "none") == starlette.get(name, "none")
    assert (name in indexed) == (name in starlette)
    assert indexed.getlist(name) == starlette.getlist(name)
    if name in starlette:
        assert indexed[name] == starlette[name]
    else:
        with pytest.raises(KeyError, match=name):
            indexed[name]


def test_every_header_is_still_there_in_order():
    indexed = IndexedHeaders({"headers": list(RAW)})

    assert indexed.raw == RAW and indexed == Headers(raw=list(RAW)) and len(indexed) == len(RAW)
