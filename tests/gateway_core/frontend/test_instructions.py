"""Merging the servers' instructions: headings, a lone server unchanged, and the size bound."""

from __future__ import annotations

from gateway_core.frontend.instructions import MAX_INSTRUCTIONS_CHARS, ServerInstructions, merged_instructions


def test_a_lone_server_without_a_prefix_gives_its_text_unchanged() -> None:
    text = "Use search before fetch.\n\n## Limits\n\nTen calls a minute."

    assert merged_instructions([ServerInstructions("docs", "", text)]) == text


def test_each_server_gets_a_heading_naming_it_and_its_prefix_in_the_given_order() -> None:
    given = [ServerInstructions("zeta", "z_", "Zeta text."), ServerInstructions("alpha", "", "Alpha text.")]

    assert merged_instructions(given) == (
        "## zeta (its tools and prompts are named z_…)\n\nZeta text.\n\n## alpha\n\nAlpha text."
    )
    assert merged_instructions([]) is None


def test_over_the_bound_only_the_long_texts_are_cut_to_fair_shares_with_a_note() -> None:
    short = "Short and whole."
    given = [
        ServerInstructions("a", "a__", "A" * MAX_INSTRUCTIONS_CHARS),
        ServerInstructions("b", "b__", short),
        ServerInstructions("c", "c__", "C" * MAX_INSTRUCTIONS_CHARS),
    ]

    merged = merged_instructions(given)

    assert merged is not None
    assert len(merged) <= MAX_INSTRUCTIONS_CHARS
    sections = merged.split("\n\n## ")
    assert sections[1] == f"b (its tools and prompts are named b__…)\n\n{short}"
    for cut in (sections[0], sections[2]):
        assert cut.endswith(f"more characters cut by Toolgate: {MAX_INSTRUCTIONS_CHARS} is the limit for all servers]")
    assert abs(sections[0].count("A") - sections[2].count("C")) <= 1
    assert sections[0].count("A") > MAX_INSTRUCTIONS_CHARS // 2 - 200
