"""The full-text index ranks tools for a free-text query and follows every new routing table."""

from __future__ import annotations

from typing import Any

import mcp_types as types

from gateway_core.downstream.base import Catalog
from gateway_core.frontend import tool_embeddings
from gateway_core.frontend.related_words import related
from gateway_core.frontend.routing import Routes, ServerCatalog, build_routes
from gateway_core.frontend.tool_search import ToolIndex, query_words, words


def tool(name: str, description: str = "", **parameters: Any) -> types.Tool:
    schema = {"type": "object", "properties": {key: {"type": "string"} for key in parameters}}
    return types.Tool(name=name, description=description, input_schema=schema)


def routes_of(*tools: types.Tool) -> Routes:
    return build_routes([ServerCatalog("srv", "srv__", Catalog(tools=tools))])


def test_names_are_split_into_lower_case_words():
    assert words("getCurrentTime") == "get current time"
    assert words("git_log-HTTPServer.v2") == "git log http server v2"


def test_a_query_loses_its_stop_words_unless_nothing_else_is_left():
    assert query_words("What is the time in Tokyo?") == ["time", "tokyo"]
    assert query_words("what is it") == ["what", "is", "it"]


def test_a_word_of_the_name_ranks_a_tool_above_one_that_only_mentions_it():
    routes = routes_of(
        tool("read_file", "Read a file; see also the time of its last change."),
        tool("get_current_time", "Get the current time in a timezone.", timezone="x"),
        tool("convert", "Convert between units."),
    )

    assert ToolIndex().search(routes, "what time is it") == ["srv__get_current_time", "srv__read_file"]


def test_stems_prefixes_and_parameter_names_match():
    routes = routes_of(
        tool("git_log", "Shows the commit logs.", repo_path="x"),
        tool("create_entities", "Create entities in the knowledge graph."),
        tool("move", "Move something.", timezone="x"),
    )
    index = ToolIndex()

    assert index.search(routes, "last commits of the repository") == ["srv__git_log"]
    assert index.search(routes, "entity") == ["srv__create_entities"]
    assert index.search(routes, "timezone") == ["srv__move"]
    assert index.search(routes, "") == []


def test_a_newer_routing_table_is_indexed_before_it_is_searched():
    index = ToolIndex()
    before = index.search(routes_of(tool("echo", "Echo text.")), "zebra")
    after = index.search(routes_of(tool("echo", "Echo text."), tool("zebra", "Stripes.")), "zebra")

    assert (before, after) == ([], ["srv__zebra"])


def test_query_syntax_in_the_text_is_taken_as_plain_words():
    routes = routes_of(tool("echo", "Echo the text back."))

    assert ToolIndex().search(routes, 'echo" OR NEAR(* -"') == ["srv__echo"]


def test_parameter_descriptions_match_below_names():
    timezone = {"type": "string", "description": "IANA timezone name, e.g. Europe/London."}
    schema = {"type": "object", "properties": {"tz": timezone}}
    routes = routes_of(
        types.Tool(name="now", description="The time.", input_schema=schema),
        tool("london_guide", "Sights to see."),
        tool("echo", "Echo text."),
    )

    assert ToolIndex().search(routes, "London") == ["srv__london_guide", "srv__now"]


def test_a_web_address_in_a_query_stands_for_a_url():
    routes = routes_of(
        tool("fetch", "Fetches a URL from the internet.", url="x"),
        tool("docs_search", "Search the Python docs."),
    )

    assert query_words("summarize https://docs.python.org/3/whatsnew/ please") == ["summarize", "url"]
    assert ToolIndex().search(routes, "get https://docs.python.org/3/") == ["srv__fetch"]


def test_a_bare_host_name_stands_for_a_url_and_a_file_name_does_not():
    assert query_words("what does the homepage of example.org say") == ["homepage", "url", "say"]
    assert query_words("open www.python.org/downloads") == ["open", "url"]
    assert query_words("open config.yaml") == ["open", "config", "yaml"]


def test_a_number_in_a_query_stands_for_the_word_number():
    routes = routes_of(
        tool("get_sum", "Returns the sum of two numbers."),
        tool("echo", "Echoes the input."),
    )

    assert query_words("add 17 and -2.5") == ["add", "number"]
    assert query_words("tag v1.0 of build2") == ["tag", "v1", "0", "build2"]
    assert ToolIndex().search(routes, "17 plus 25") == ["srv__get_sum"]


def test_a_tool_marked_deprecated_ranks_after_the_one_named_in_its_place():
    routes = routes_of(
        tool("read_file", "Read the complete contents of a file. DEPRECATED: Use read_text_file instead."),
        tool("read_text_file", "Read the complete contents of a file from the file system as text, in any encoding."),
    )

    assert ToolIndex().search(routes, "read the contents of a file") == ["srv__read_text_file", "srv__read_file"]


def test_show_is_a_word_that_ranks():
    routes = routes_of(
        tool("git_show", "Shows the contents of a commit."),
        tool("git_commit", "Records changes to the repository."),
    )

    assert ToolIndex().search(routes, "show commit abc123")[0] == "srv__git_show"


def test_a_task_in_other_words_finds_the_tool_through_related_words_ranked_below_its_own_words():
    routes = routes_of(
        tool("get_sum", "Returns the sum of two numbers."),
        tool("totals_report", "A report of the totals."),
        tool("echo", "Echoes the input."),
    )
    index = ToolIndex()

    assert index.search(routes, "the total of 19 and 23") == ["srv__totals_report", "srv__get_sum"]
    assert index.search(routes, "zebra") == []


def test_related_words_come_from_wordnet_and_reduce_inflections_first():
    assert "total" in related("sum")
    assert "recall" in related("remembered")
    assert "comparison" in related("compares")
    assert related("zzzz") == []


def test_with_an_embedder_a_tool_that_shares_no_word_with_the_query_is_found_by_its_meaning():
    embedder = tool_embeddings.load()
    assert embedder is not None
    routes = routes_of(
        tool("read_file", "Read the contents of a file."),
        tool("get_current_time", "Get the current time in a specific timezone."),
        tool("get_sum", "Returns the sum of two numbers."),
    )
    index = ToolIndex()

    assert index.search(routes, "which hour is it in Sydney") == []
    assert index.search(routes, "which hour is it in Sydney", embedder)[0] == "srv__get_current_time"
    assert index.search(routes, "the sum of two numbers", embedder)[0] == "srv__get_sum"
    assert "srv__read_file" not in index.search(routes, "zebra stripes", embedder)


def test_the_meanings_of_a_catalogue_are_worked_out_once_and_followed_to_a_newer_one():
    embedder = tool_embeddings.load()
    assert embedder is not None
    first = routes_of(tool("get_current_time", "Get the current time in a specific timezone."))
    newer = routes_of(tool("get_sum", "Returns the sum of two numbers."))
    index = ToolIndex()

    assert not index.knows_meanings(first, embedder)
    meanings = index.meanings(first, embedder)
    assert index.knows_meanings(first, embedder) and index.meanings(first, embedder) is meanings
    assert index.search(newer, "add two figures together", embedder) == ["srv__get_sum"]
    assert index.knows_meanings(newer, embedder) and not index.knows_meanings(first, embedder)


def test_scored_gives_each_match_its_relevance_most_relevant_first_a_close_match_well_above_a_weak_one():
    embedder = tool_embeddings.load()
    assert embedder is not None
    routes = routes_of(
        tool("get_sum", "Returns the sum of two numbers."),
        tool("water_plants", "Water the garden's plants; the numbers of the beds are on the map."),
        tool("read_file", "Read a file."),
    )
    scored = ToolIndex().scored(routes, "add two numbers together", embedder)

    assert [name for name, _ in scored] == ToolIndex().search(routes, "add two numbers together", embedder)
    assert [name for name, _ in scored][:2] == ["srv__get_sum", "srv__water_plants"]
    assert scored[1][1] < 0.4 * scored[0][1]
