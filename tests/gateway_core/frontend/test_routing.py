import re

import mcp_types as types

from gateway_core.downstream.base import Catalog
from gateway_core.frontend.routing import (
    MAX_NAME_LENGTH,
    NameKind,
    PublicName,
    Renaming,
    Route,
    ServerCatalog,
    build_routes,
    public_name,
)

VALID_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


def tool(name: str) -> types.Tool:
    return types.Tool(name=name, input_schema={"type": "object"})


def test_tools_are_named_prefix_plus_upstream_name_and_routed_back():
    routes = build_routes([ServerCatalog("github", "github__", Catalog(tools=(tool("create_issue"),)))])

    assert [t.name for t in routes.tool_list] == ["github__create_issue"]
    assert routes.tools["github__create_issue"].server == "github"
    assert routes.tools["github__create_issue"].upstream_name == "create_issue"


def test_an_empty_prefix_keeps_the_upstream_name():
    routes = build_routes([ServerCatalog("fs", "", Catalog(tools=(tool("read_file"),)))])

    assert [t.name for t in routes.tool_list] == ["read_file"]


def test_invalid_characters_are_replaced_and_long_names_shortened_deterministically():
    long_name = "x" * 140
    first = public_name("my server/", long_name)
    again = public_name("my server/", long_name)

    assert first == again
    assert len(first) == MAX_NAME_LENGTH
    assert VALID_NAME.match(first)
    assert public_name("a b__", "tool:1") == "a_b__tool_1"


def test_a_name_the_spec_allows_passes_unchanged_up_to_128_characters():
    name = "a.b-c_" + "d" * 122

    assert public_name("", name) == name
    assert len(name) == 128


def test_two_long_names_with_a_common_start_stay_distinct():
    a = public_name("srv__", "y" * 130 + "_alpha")
    b = public_name("srv__", "y" * 130 + "_beta")

    assert a != b


def test_colliding_names_are_resolved_deterministically_and_reported():
    catalogs = [
        ServerCatalog("zeta", "", Catalog(tools=(tool("search"),))),
        ServerCatalog("alpha", "", Catalog(tools=(tool("search"),))),
    ]

    routes = build_routes(catalogs)
    reversed_routes = build_routes(list(reversed(catalogs)))

    assert routes.tools["search"].server == "alpha"
    renamed = [name for name, route in routes.tools.items() if route.server == "zeta"]
    assert len(renamed) == 1 and renamed[0] != "search" and VALID_NAME.match(renamed[0])
    assert routes.tools == reversed_routes.tools
    assert len(routes.collisions) == 1 and "zeta" in routes.collisions[0]


def test_resources_route_by_listed_uri_then_by_template():
    catalog_a = Catalog(resources=(types.Resource(name="readme", uri="file:///readme"),))
    catalog_b = Catalog(resource_templates=(types.ResourceTemplate(name="item", uri_template="items://{id}"),))
    routes = build_routes([ServerCatalog("a", "a__", catalog_a), ServerCatalog("b", "b__", catalog_b)])

    assert routes.server_for_uri("file:///readme") == "a"
    assert routes.server_for_uri("items://42") == "b"
    assert routes.server_for_uri("unknown://x") is None


def test_tool_schemas_are_kept_for_fast_lookup_under_public_names():
    schema = {"type": "object", "properties": {"text": {"type": "string"}}}
    routes = build_routes(
        [ServerCatalog("echo", "echo__", Catalog(tools=(types.Tool(name="echo", input_schema=schema),)))]
    )

    assert routes.input_schemas["echo__echo"] == schema


def test_an_unavailable_server_lists_nothing_but_its_names_stay_routed_to_it():
    routes = build_routes(
        [
            ServerCatalog("github", "github__", Catalog(tools=(tool("create_issue"),)), available=False),
            ServerCatalog("git", "git__", Catalog(tools=(tool("log"),))),
            ServerCatalog("gitlab", "gitlab__long__", Catalog(), available=False),
        ]
    )

    assert [t.name for t in routes.tool_list] == ["git__log"]
    assert routes.unavailable_server("github__create_issue") == Route("github", "create_issue")
    assert routes.unavailable_server("github__never_listed") == Route("github", "never_listed")
    assert routes.unavailable_server("gitlab__long__x") == Route("gitlab", "x")  # the longest prefix wins
    assert routes.unavailable_server("git__log") is None  # listed: routed to the ready server
    assert routes.unavailable_server("other") is None


def test_a_ready_servers_name_is_never_routed_as_unavailable():
    routes = build_routes(
        [
            ServerCatalog("a", "", Catalog(tools=(tool("shared"),)), available=False),
            ServerCatalog("b", "", Catalog(tools=(tool("shared"),))),
        ]
    )

    assert routes.tools["shared"].server == "b"
    assert routes.unavailable_tools == {}


def test_a_name_the_spec_allows_under_an_empty_prefix_is_recorded_as_not_renamed():
    routes = build_routes([ServerCatalog("fs", "", Catalog(tools=(tool("read_file"),)))])

    assert routes.names == (PublicName(NameKind.TOOL, "read_file", "fs", "read_file"),)
    assert routes.names[0].reason == ""
    assert not routes.names[0].rewritten


def test_each_listed_name_says_which_rewrites_made_it_and_why_in_one_line():
    catalog = Catalog(tools=(tool("create issue/now"), tool("list")), prompts=(types.Prompt(name="résumé"),))
    routes = build_routes([ServerCatalog("github", "gh__", catalog)])

    spaced, plain, prompt = routes.names
    assert (spaced.kind, spaced.name, spaced.upstream_name) == (
        NameKind.TOOL,
        "gh__create_issue_now",
        "create issue/now",
    )
    assert spaced.renamings == (Renaming.PREFIX, Renaming.CHARACTERS)
    assert spaced.rewritten
    assert spaced.reason == 'prefix "gh__"; characters the MCP spec does not allow in names (" ", "/") became "_"'
    assert plain.renamings == (Renaming.PREFIX,) and not plain.rewritten
    assert (prompt.kind, prompt.name, prompt.reason) == (
        NameKind.PROMPT,
        "gh__r_sum_",
        'prefix "gh__"; characters the MCP spec does not allow in names ("é") became "_"',
    )


def test_a_name_shortened_to_128_characters_says_so():
    routes = build_routes([ServerCatalog("fs", "", Catalog(tools=(tool("x" * 130),)))])

    (named,) = routes.names
    assert named.renamings == (Renaming.LENGTH,)
    assert named.reason == "over 128 characters: shortened, with a hash"


def test_a_name_another_server_kept_says_whose_it_is():
    catalogs = [
        ServerCatalog("zeta", "", Catalog(tools=(tool("search"),))),
        ServerCatalog("alpha", "", Catalog(tools=(tool("search"),))),
    ]

    kept, renamed = build_routes(catalogs).names

    assert (kept.server, kept.name, kept.renamings) == ("alpha", "search", ())
    assert renamed.server == "zeta" and renamed.name != "search"
    assert renamed.renamings == (Renaming.CLASH,) and renamed.taken_by == Route("alpha", "search")
    assert renamed.reason == 'tool "search" of "alpha" already has that name: a hash was added'


def test_unseen_characters_in_a_reason_are_escaped():
    routes = build_routes([ServerCatalog("fs", "", Catalog(tools=(tool('a\u200bb"c\\d'),)))])

    assert routes.names[0].reason.endswith('names ("\\"", "\\\\", "\\u200b") became "_"')


def test_an_unavailable_servers_names_are_not_listed_as_public_names():
    routes = build_routes([ServerCatalog("gh", "gh__", Catalog(tools=(tool("x"),)), available=False)])

    assert routes.names == ()
