from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway_core.audit import summarize_arguments
from gateway_core.audit import summary as summary_module


def test_plain_arguments_are_summarized_as_one_line_of_json() -> None:
    summary = summarize_arguments({"repo": "octo/hello", "count": 3, "draft": False, "note": "line1\nline2"})

    assert "\n" not in summary
    assert json.loads(summary) == {"repo": "octo/hello", "count": 3, "draft": False, "note": "line1\nline2"}


def test_no_arguments_summarize_as_an_empty_object() -> None:
    assert summarize_arguments(None) == "{}"


def test_values_under_secret_looking_keys_are_redacted_at_any_depth() -> None:
    summary = summarize_arguments(
        {
            "GitHub_Token": "abc",
            "config": {"db_password": "hunter2", "hosts": [{"Authorization": "xyz"}, {"api-key": 1}]},
            "session_id": "s1",
            "name": "kept",
        }
    )

    assert json.loads(summary) == {
        "GitHub_Token": "[redacted]",
        "config": {"db_password": "[redacted]", "hosts": [{"Authorization": "[redacted]"}, {"api-key": "[redacted]"}]},
        "session_id": "[redacted]",
        "name": "kept",
    }
    for secret in ("abc", "hunter2", "xyz", "s1"):
        assert f'"{secret}"' not in summary


def test_token_looking_values_are_redacted_whatever_their_key() -> None:
    values = [
        "Bearer abc.def",
        "sk-proj-abcdefgh123",
        "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
        "github_pat_11ABCDEFG0abcdefghijkl",
        "xoxb-1234567890-abcdefgh",
        "tg_Zx81kP0qLmN3vB7cR2tY",
        "d41d8cd98f00b204e9800998ecf8427e",
        "q8Zr2Lx9Vb4Nw7Kp1Ts6Hy3Jd0Fg5Mc8",
    ]

    summary = json.loads(summarize_arguments({"values": values, "nested": {"x": [values[0]]}}))

    assert summary == {"values": ["[redacted]"] * len(values), "nested": {"x": ["[redacted]"]}}


def test_a_token_inside_a_longer_text_is_redacted_and_the_rest_kept() -> None:
    summary = json.loads(
        summarize_arguments({"command": 'curl -H "Authorization: Bearer ghp_16C7e42F292c6912E7710c" x'})
    )

    assert "ghp_16C7e42F292c6912E7710c" not in summary["command"]
    assert summary["command"].startswith("curl -H")
    assert "[redacted]" in summary["command"]


def test_paths_words_and_short_prefixed_words_are_not_mistaken_for_keys() -> None:
    kept = {
        "path": "/usr/lib/python3.11/site-packages/gateway_core/audit/log.py",
        "url": "https://example.com/api/v1/repos/octocat/hello-world/issues/12345",
        "name": "test_a_denied_tool_is_hidden_from_the_list2",
        "class": "MyVeryLongClassNameForHandlingV2Things",
        "package": "sk-learn",
    }

    assert json.loads(summarize_arguments(kept)) == kept


def test_long_values_are_cut_with_an_ellipsis() -> None:
    summary = json.loads(summarize_arguments({"text": "word " * 100}, max_value_chars=20))

    assert summary["text"] == ("word " * 4)[:19] + "…"


def test_the_whole_summary_is_cut_to_the_total_limit() -> None:
    summary = summarize_arguments({f"key{i}": "value" for i in range(100)}, max_total_chars=50)

    assert len(summary) == 50
    assert summary.endswith("…")


def test_redaction_happens_before_truncation_so_no_part_of_a_secret_shows() -> None:
    secret = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"

    summary = summarize_arguments({"text": secret}, max_value_chars=10)

    assert secret[:9] not in summary
    assert json.loads(summary) == {"text": "[redacted]"}


def test_a_very_long_value_is_summarized_from_its_start_and_a_key_there_is_still_redacted() -> None:
    long_text = "y" * (20 * 1024 * 1024)
    long_key = "q8Zr2Lx9Vb4Nw7Kp1Ts6Hy3Jd0Fg5Mc8" * (1024 * 1024)

    summary = json.loads(summarize_arguments({"text": long_text, "key": long_key}))

    assert summary == {"text": "y" * 79 + "…", "key": "[redacted]…"}


def test_a_key_that_the_search_of_a_long_value_cuts_through_shows_no_part_of_it() -> None:
    # Four long keys, each shown as "[redacted]", leave room in the summary for where the search stops;
    # a key starts 12 characters before that point.
    secret = "Zx81kP0qLmN3vB7cR2tYq8Zr2Lx9Vb4Nw7Kp1Ts6"
    key = ("q8Zr2Lx9Vb4Nw7Kp1Ts6Hy3Jd0Fg5Mc8" * 40)[: (summary_module._SCANNED_CHARS - 12 - 4) // 4]
    text = " ".join([key] * 4) + " " + secret + " and more words" * 1000
    assert text.index(secret) == summary_module._SCANNED_CHARS - 12

    summary = json.loads(summarize_arguments({"text": text}))

    assert summary["text"] == "[redacted] [redacted] [redacted] [redacted] …"


def _reference(value: Any, max_chars: int, depth: int) -> Any:
    """The summary's cleaning as it reads when every value takes the general way (no shortcut for short text)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        start = summary_module._scanned_start(value, max_chars)
        cut = summary_module.ELLIPSIS if len(start) < len(value) else ""
        return summary_module._truncate(summary_module.redact_text(start) + cut, max_chars)
    if depth >= summary_module._MAX_DEPTH:
        return summary_module.ELLIPSIS
    if isinstance(value, dict):
        return {
            summary_module._truncate(str(key), max_chars): summary_module.REDACTED
            if summary_module.is_secret_key(str(key))
            else _reference(item, max_chars, depth + 1)
            for key, item in value.items()
        }
    return [_reference(item, max_chars, depth + 1) for item in value]


_TOKENS = st.sampled_from(
    ["ghp_" + "a1B2" * 6, "Bearer abc.def", "sk-learn", "x" * 31, "Ab1" * 11, "deadbeef" * 4, "/usr/" + "Ab1z" * 9]
)
_STRINGS = st.text(max_size=40) | _TOKENS | st.builds(lambda a, b: a + b, st.text(max_size=90), _TOKENS)
_KEYS = st.sampled_from(["text", "path", "api_key", "Session", "x" * 90, "n"]) | st.text(max_size=8)
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _STRINGS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=3),
    max_leaves=12,
)


@given(arguments=st.dictionaries(_KEYS, _VALUES, max_size=5), max_value_chars=st.sampled_from([80, 10, 40]))
@settings(max_examples=300)
def test_a_summary_is_what_cleaning_every_value_the_general_way_and_json_dumps_make(
    arguments: dict[str, Any], max_value_chars: int
) -> None:
    expected = json.dumps(_reference(arguments, max_value_chars, 0), ensure_ascii=False, separators=(", ", ": "))

    assert summarize_arguments(arguments, max_value_chars=max_value_chars, max_total_chars=10**6) == expected


_SHORT_TOKENS = st.sampled_from(
    ["Basic abc", "bearer x", "tg_abcdefgh", "AKIA12345678", "xoxb-12345678", "sk-12345678", "gho_12345678"]
)
_ASCII = st.text(alphabet=st.characters(max_codepoint=127), max_size=40)


@given(
    arguments=st.dictionaries(
        _ASCII.filter(lambda key: len(key) < 12) | st.sampled_from(["token", "api_key", "text"]),
        _ASCII | st.integers() | _SHORT_TOKENS | st.builds(lambda a, b: a + b, _ASCII, _SHORT_TOKENS),
        max_size=9,
    ),
    max_value_chars=st.sampled_from([80, 10, 40]),
)
@settings(max_examples=300)
def test_a_summary_of_words_and_whole_numbers_is_what_the_general_way_makes(
    arguments: dict[str, Any], max_value_chars: int
) -> None:
    expected = json.dumps(_reference(arguments, max_value_chars, 0), ensure_ascii=False, separators=(", ", ": "))

    assert summarize_arguments(arguments, max_value_chars=max_value_chars, max_total_chars=10**6) == expected
    for token in ("bearer x", "tg_abcdefgh", "AKIA12345678", "sk-12345678"):
        assert token not in summarize_arguments({"text": token, "n": 1})
