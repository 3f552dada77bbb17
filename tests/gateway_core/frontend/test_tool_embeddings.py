"""The table of token vectors splits texts as WordLlama does and gives its vectors, in plain Python."""

from __future__ import annotations

import gzip
import logging
import math
from importlib.resources import files
from operator import mul
from pathlib import Path
from typing import Any

import pytest

from gateway_core.frontend import tool_embeddings
from gateway_core.frontend.tool_embeddings import Embedder

TEXTS = [
    "what time is it in Tokyo",
    "Shows the commit logs",
    "Read the complete contents of a file as text. DEPRECATED: Use read_text_file instead.",
    "getCurrentTime(tz='Europe/Zürich') — 42 + 58 = 100 ✓",
    "naïve café façade, 東京, emoji 🙂",
]


def embedder() -> Embedder:
    loaded = tool_embeddings.load()
    assert loaded is not None
    return loaded


def wordllama() -> Any:
    """WordLlama's model as its wheel ships it (the test extra installs it), read as the table's script reads it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        pytest.importorskip("wordllama")
        from safetensors import safe_open
        from tokenizers import Tokenizer
        from wordllama import WordLlamaInference
    finally:  # wordllama configures the root logger when imported
        root.handlers[:], root.level = handlers, level
    package = files("wordllama")
    tokenizer = Tokenizer.from_file(str(package / "tokenizers" / "l2_supercat_tokenizer_config.json"))
    with safe_open(str(package / "weights" / "l2_supercat_256.safetensors"), framework="np") as weights:
        return WordLlamaInference(weights.get_tensor(next(iter(weights.keys()))), tokenizer)


def test_a_word_is_split_into_the_tokens_of_the_models_own_tokenizer():
    tokenizer = wordllama().tokenizer
    for text in TEXTS:
        for word in text.split():
            assert embedder().tokens(word) == tokenizer.encode(word, add_special_tokens=False).ids, word


def test_a_texts_vector_is_wordllamas_vector_of_it():
    model = wordllama()
    for text in TEXTS:
        ours, theirs = embedder().vector(text), model.embed([text], norm=True)[0]
        assert sum(map(mul, ours, theirs)) > 0.999, text  # the same direction, up to the bytes it is kept in


def test_a_querys_similarity_is_the_same_for_new_and_known_words():
    meanings = embedder().meanings(["Get the current time in a specific timezone.", "Returns the sum of two numbers."])
    vectors = embedder().vectors(["Get the current time in a specific timezone.", "Returns the sum of two numbers."])
    query = embedder().vector("what time is it in Tokyo")
    expected = [sum(map(mul, vector, query)) for vector in vectors]

    for _ in range(2):  # the second time, every word's dot products are known
        assert meanings.similarity("what time is it in Tokyo") == pytest.approx(expected, abs=1e-3)
    assert meanings.similarity("") == [0.0, 0.0]
    assert math.isclose(sum(map(mul, query, query)), 1.0)


def test_the_dot_products_worked_out_in_big_integers_are_those_of_each_vector():
    texts = [f"{word} tool number {i}" for i, word in enumerate(" ".join(TEXTS).split() * 8)] + ["", "🙂"]
    meanings = embedder().meanings(texts)
    vectors = embedder().vectors(texts)

    for query in ["which hour is it", "zebra", "🙂 naïve", " ".join(TEXTS)]:
        word_sum = embedder().word_sum(query.split()[0])
        exact = [sum(map(mul, vector, word_sum)) for vector in vectors]
        top = max(map(abs, exact))
        assert meanings._dot_products(word_sum) == pytest.approx(exact, abs=1e-3 * top)
    assert len(meanings) == len(texts) and embedder().meanings([]).similarity("zebra") == []


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "No such file"),
        (b"not gzip", "Not a gzipped file"),
        (gzip.compress(b'{"dims": 2, "pieces": ["a", "b"], "merges": []}\n' + bytes(8) + bytes(3)), "3 numbers"),
        (gzip.compress(b"{not json\n"), "Expecting"),
    ],
)
def test_a_table_that_cannot_be_read_leaves_search_by_words_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes | None, reason: str
):
    table = tmp_path / "token_vectors.bin.gz"
    if content is not None:
        table.write_bytes(content)

    with caplog.at_level(logging.WARNING, logger=tool_embeddings.__name__):
        assert tool_embeddings.read(table) is None

    assert "tool search ranks by words alone" in caplog.text and reason in caplog.text
