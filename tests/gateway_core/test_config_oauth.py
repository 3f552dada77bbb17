"""A remote entry's "oauth" block: every field optional, each mistake one clear sentence, no secret echoed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway_core.config import load_config, secret_references
from gateway_core.errors import ConfigError

URL = "https://mcp.example.com/mcp"


def _load(tmp_path: Path, oauth: Any, **entry: Any) -> Any:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"servers": {"r": {"url": URL, "oauth": oauth, **entry}}}))
    return load_config(path)


def _problems(tmp_path: Path, oauth: Any, **entry: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, oauth, **entry)
    return caught.value.problems


def test_a_pre_registered_client_with_its_secret_scopes_and_port_loads_and_its_secret_is_a_listed_reference(
    tmp_path: Path,
) -> None:
    config = _load(
        tmp_path,
        {"client_id": "abc", "client_secret": "${secret:r.client}", "scopes": ["read", "write"], "redirect_port": 8765},
    )

    oauth = config.servers["r"].oauth
    assert (oauth.client_id, oauth.client_secret, oauth.scopes, oauth.redirect_port, oauth.grant) == (
        "abc",
        "${secret:r.client}",
        ("read", "write"),
        8765,
        "authorization_code",
    )
    assert [(r.json_path, r.name) for r in secret_references(config)] == [("servers.r.oauth.client_secret", "r.client")]


def test_an_empty_oauth_block_is_the_same_as_none(tmp_path: Path) -> None:
    oauth = _load(tmp_path, {}).servers["r"].oauth

    assert (oauth.client_id, oauth.client_secret, oauth.scopes, oauth.redirect_port) == (None, None, (), None)


@pytest.mark.parametrize(
    ("oauth", "problem"),
    [
        (
            {"client_id": "abc", "client_secret": "hunter2-the-real-secret"},
            'servers.r.oauth: "client_secret" must be a ${secret:NAME} reference, not the secret itself: '
            'store it with `toolgate secrets set NAME` and write "${secret:NAME}"',
        ),
        (
            {"client_secret": "${secret:x}"},
            'servers.r.oauth: "client_secret" needs the "client_id" it belongs to',
        ),
        (
            {"grant": "client_credentials", "client_id": "abc"},
            'servers.r.oauth: "grant": "client_credentials" needs "client_secret", "issuer" '
            "(no person signs in to pick them)",
        ),
        (
            {
                "grant": "client_credentials",
                "client_id": "abc",
                "client_secret": "${secret:x}",
                "issuer": "https://auth.example.com",
                "redirect_port": 9000,
            },
            'servers.r.oauth: "redirect_port" is for a sign-in in the browser; "client_credentials" has none',
        ),
        (
            {"client_metadata_url": "http://example.com/toolgate.json"},
            'servers.r.oauth: "client_metadata_url" must be the https:// URL of a Client ID Metadata Document, '
            "with a path, found 'http://example.com/toolgate.json'",
        ),
        (
            {"client_metadata_url": "https://example.com/"},
            'servers.r.oauth: "client_metadata_url" must be the https:// URL of a Client ID Metadata Document, '
            "with a path, found 'https://example.com/'",
        ),
        (
            {"client_metadata_url": "https://example.com/toolgate.json", "client_id": "abc"},
            'servers.r.oauth: "client_metadata_url" and "client_id" each name the client: keep one',
        ),
        ({"redirect_port": 70000}, "servers.r.oauth.redirect_port: expected a number of at most 65535, found 70000"),
        ({"scopes": ["read write"]}, "servers.r.oauth.scopes[0]: "),
        (
            {"grant": "password"},
            'servers.r.oauth.grant: expected one of "authorization_code" or "client_credentials", found "password"',
        ),
        ({"issuer": "auth.example.com"}, 'servers.r.oauth: "issuer" must be the authorization server\'s http(s) URL'),
        (
            {"client": "abc"},
            "servers.r.oauth.client: unknown key "
            "(expected one of: client_id, client_secret, scopes, redirect_port, grant, issuer, "
            "client_metadata_url)",
        ),
    ],
)
def test_a_mistake_in_the_oauth_block_is_one_sentence_at_its_json_path(
    tmp_path: Path, oauth: dict[str, Any], problem: str
) -> None:
    problems = _problems(tmp_path, oauth)

    assert len(problems) == 1
    assert problems[0].startswith("config.json: " + problem)
    assert "hunter2" not in problems[0]


def test_a_stdio_server_has_no_oauth_block(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"servers": {"s": {"command": "x", "oauth": {}}}}))

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert caught.value.problems == [
        'config.json: servers.s: "oauth" is for remote servers ("url"); a stdio server signs in by itself'
    ]


def test_a_secret_reference_elsewhere_in_the_oauth_block_is_refused(tmp_path: Path) -> None:
    problems = _problems(tmp_path, {"client_id": "${secret:id}"})

    assert problems == [
        'config.json: servers.r.oauth.client_id: a ${secret:NAME} reference is only allowed in "env" and "headers" '
        'values and in "oauth.client_secret"'
    ]
