"""How close in meaning a query is to each tool, from WordLlama's static token vectors, in plain Python.

WordLlama (``l2_supercat``, MIT) gives each token of its tokenizer a vector; a text's vector is the mean
of its tokens'. ``token_vectors.bin.gz`` beside this module (built by ``scripts/build_token_vectors.py``,
8 MB) holds that tokenizer's pieces and merges and each token's vector in signed bytes, so a text is
split into the same tokens here (the model's own byte-pair merges) and its vector computed without
numpy or the model's packages. Read on the first query (about half a second, about 35 MB). A query's
similarity to 500 tools then takes a fraction of a millisecond for words seen before and about half
a millisecond more for each new word (``Meanings``). Where the table cannot be read, ``load`` logs why and
answers None, and tool search ranks by words alone.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import sys
from array import array
from collections.abc import Sequence
from functools import cache, lru_cache
from operator import add, mul
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

TABLE = Path(__file__).with_name("token_vectors.bin.gz")
_SPACE = "\u2581"  # how the tokenizer writes the space that starts a word
_WORDS = 2048  # words whose tokens' vectors are kept, summed, once split (8 kB each)
_TEXTS = 2048  # texts whose vectors are kept (2 kB each)


class Embedder:
    """Turns texts into unit vectors whose dot product says how close they are in meaning."""

    def __init__(self, table: tuple[dict[str, Any], array[float], array[int]]) -> None:
        header, scales, numbers = table
        self.dims: int = header["dims"]
        self._pieces: dict[str, int] = {piece: token for token, piece in enumerate(header["pieces"])}
        self._ranks: dict[str, int] = {merge: rank for rank, merge in enumerate(header["merges"])}  # "left right"
        self._scales: array[float] = scales
        self._numbers: array[int] = numbers
        self.word_sum = lru_cache(maxsize=_WORDS)(self._word_sum)
        self.vector = lru_cache(maxsize=_TEXTS)(self._vector)

    def vectors(self, texts: Sequence[str]) -> list[array[float]]:
        """One unit vector per text (a text with no tokens gets zeros)."""
        return [self.vector(text) for text in texts]

    def _vector(self, text: str) -> array[float]:
        """The unit vector of ``text``: the mean of its tokens' vectors, scaled to length 1.

        ``vector`` keeps the last ``_TEXTS``, so most of a catalogue that changed is known.
        """
        total = [0.0] * self.dims
        for word in text.split():
            total = list(map(add, total, self.word_sum(word)))
        norm = math.sqrt(sum(map(mul, total, total)))
        return array("d", (value / norm for value in total) if norm else total)

    def meanings(self, texts: Sequence[str]) -> Meanings:
        """The meanings of ``texts``, to compare queries with (faster than ``similarity`` for repeated words)."""
        return Meanings(self, self.vectors(texts))

    def tokens(self, word: str) -> list[int]:
        """The tokens of one word (with the space before it), as the model's tokenizer splits it."""
        symbols = list(_SPACE + word)
        while len(symbols) > 1:
            # The adjacent pair merged first in training is merged next (leftmost among equals).
            pairs = zip(symbols, symbols[1:], strict=False)
            ranked = [(self._ranks.get(f"{left} {right}", -1), i) for i, (left, right) in enumerate(pairs)]
            rank, i = min(((rank, i) for rank, i in ranked if rank >= 0), default=(-1, -1))
            if rank < 0:
                break
            symbols[i : i + 2] = [symbols[i] + symbols[i + 1]]
        tokens = []
        for symbol in symbols:
            token = self._pieces.get(symbol)
            if token is not None:
                tokens.append(token)
            else:  # byte fallback, as the tokenizer's
                tokens.extend(self._pieces.get(f"<0x{byte:02X}>", 0) for byte in symbol.encode())
        return tokens

    def _word_sum(self, word: str) -> list[float]:
        """The sum of the vectors of ``word``'s tokens (``word_sum`` keeps the last ``_WORDS``)."""
        total = [0.0] * self.dims
        for token in self.tokens(word):
            scale, start = self._scales[token], token * self.dims
            total = list(map(add, total, (scale * number for number in self._numbers[start : start + self.dims])))
        return total


class Meanings:
    """Texts' unit vectors, and how close a query is to each.

    A query's similarity to every text is the sum, over its words, of each word's dot products with
    the texts (divided by the length of the query's vector): a word's dot products are kept (for the
    last ``WORDS_KEPT`` words), so a word seen in an earlier query costs one addition per text.

    A new word's dot products with all texts are worked out at once with Python's big integers (no
    numpy): for each of the vectors' dimensions, one integer holds every text's number in that
    dimension, in fixed point and offset to be non-negative, each in its own ``_SLOT``-bit field.
    Multiplying those integers by the word's numbers (in fixed point) and adding them up gives every
    text's dot product in its field at once, with no carry between fields: the word's positive and
    negative numbers are summed apart, so no field goes below zero or past ``_SLOT`` bits. That is about
    ten times faster than a dot product per text, and as exact as the table (relative error below 1e-3).
    """

    WORDS_KEPT = 1024
    _FRACTION = 15  # bits after the point: the texts' numbers (within ±1) and the word's (scaled to ±1)
    _SLOT = 40  # bits a field: dims × 2**15 × 2**16 stays below 2**40 for up to 256 dimensions

    def __init__(self, embedder: Embedder, vectors: Sequence[Sequence[float]]) -> None:
        if embedder.dims > 256:
            raise ValueError(f"{embedder.dims} dimensions: at most 256 fit a field of {self._SLOT} bits")
        self._embedder = embedder
        self._count = len(vectors)
        one, width = 1 << self._FRACTION, self._SLOT // 8
        self._packed = [
            int.from_bytes(
                b"".join((round(vector[dimension] * one) + one).to_bytes(width, "little") for vector in vectors),
                "little",
            )
            for dimension in range(embedder.dims)
        ]
        self._columns: dict[str, list[float]] = {}

    def __len__(self) -> int:
        return self._count

    def similarity(self, text: str) -> list[float]:
        """The cosine similarity of ``text`` to each text, in their order."""
        total = [0.0] * self._count
        query = [0.0] * self._embedder.dims
        for word in text.split():
            total = list(map(add, total, self._column(word)))
            query = list(map(add, query, self._embedder.word_sum(word)))
        norm = math.sqrt(sum(map(mul, query, query)))
        return [value / norm for value in total] if norm else total

    def _column(self, word: str) -> list[float]:
        column = self._columns.pop(word, None)
        if column is None:
            column = self._dot_products(self._embedder.word_sum(word))
            if len(self._columns) >= self.WORDS_KEPT:
                del self._columns[next(iter(self._columns))]
        self._columns[word] = column  # last used last
        return column

    def _dot_products(self, vector: Sequence[float]) -> list[float]:
        """``vector``'s dot product with each text's vector (see the class)."""
        top = max(map(abs, vector), default=0.0)
        if not top or not self._count:
            return [0.0] * self._count
        one, width = 1 << self._FRACTION, self._SLOT // 8
        numbers = [round(value / top * one) for value in vector]
        positive = negative = 0
        for number, packed in zip(numbers, self._packed, strict=True):
            if number > 0:
                positive += number * packed
            elif number < 0:
                negative -= number * packed
        size = width * self._count
        above, below = positive.to_bytes(size, "little"), negative.to_bytes(size, "little")
        offset, scale = one * sum(numbers), top / (one * one)
        return [
            (
                int.from_bytes(above[start : start + width], "little")
                - int.from_bytes(below[start : start + width], "little")
                - offset
            )
            * scale
            for start in range(0, size, width)
        ]


@cache
def load() -> Embedder | None:
    """The embedder, read once from the table beside this module; None when it cannot be read."""
    return read()


def read(path: Path = TABLE) -> Embedder | None:
    """The embedder read from ``path`` (``load`` reads it once); None, logged as a warning, when unreadable."""
    try:
        data = gzip.decompress(path.read_bytes())
        line, _, rest = data.partition(b"\n")
        header = json.loads(line)
        count, dims = len(header["pieces"]), int(header["dims"])
        scales = array("f", rest[: 4 * count])
        numbers = array("b", rest[4 * count :])
        if sys.byteorder != "little":
            scales.byteswap()
        if len(scales) != count or len(numbers) != count * dims:
            raise ValueError(f"{len(numbers)} numbers for {count} tokens of {dims}")
        return Embedder((header, scales, numbers))
    except (OSError, EOFError, ValueError, KeyError, TypeError, gzip.BadGzipFile) as exc:
        logger.warning("tool search ranks by words alone: its table of meanings %s cannot be read: %s", path, exc)
        return None
