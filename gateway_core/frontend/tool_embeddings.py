"""How close in meaning a query is to each tool, with WordLlama's static embeddings (the extra ``semantic``).

WordLlama (PyPI ``wordllama``, MIT) ships its small model inside its wheel: a 256-dimension vector for
each token of its tokenizer; a text's vector is the mean of its tokens'. Nothing is downloaded: the
model is read from the installed package, and where the package is not installed, ``load`` answers
None and tool search ranks by words alone. Loading takes a few hundred milliseconds, once, and
about 20 MB; a query's vector takes a fraction of a millisecond.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cache
from importlib.resources import files
from typing import Any, Protocol

logger = logging.getLogger(__name__)

MODEL = "l2_supercat"
DIMENSIONS = 256


class Vectors(Protocol):
    """Unit vectors, one row per text (a numpy array)."""

    def __matmul__(self, other: Any) -> Any: ...


class Embedder:
    """Turns texts into unit vectors whose dot product says how close they are in meaning."""

    def __init__(self, model: Any) -> None:
        self._model = model

    def vectors(self, texts: Sequence[str]) -> Vectors:
        """One unit vector per text."""
        vectors: Vectors = self._model.embed(list(texts), norm=True)
        return vectors

    def similarity(self, vectors: Vectors, text: str) -> list[float]:
        """The cosine similarity of ``text`` to each of ``vectors``, in their order."""
        query = self._model.embed([text], norm=True)[0]
        return [float(value) for value in vectors @ query]


@cache
def load() -> Embedder | None:
    """The embedder, read once from the installed ``wordllama``; None when it is not installed or unreadable."""
    return read()


def read() -> Embedder | None:
    """The embedder read from the installed ``wordllama`` (``load`` reads it once); None when there is none.

    An installed package whose model cannot be read is logged as a warning, and search ranks by words.
    """
    root_logger = logging.getLogger()
    handlers, level = list(root_logger.handlers), root_logger.level
    try:
        # wordllama configures the root logger when imported: what it sets is undone below.
        from safetensors import safe_open
        from tokenizers import Tokenizer
        from wordllama import WordLlamaInference
    except ImportError:
        return None
    finally:
        root_logger.handlers[:], root_logger.level = handlers, level
    package = files("wordllama")
    try:
        tokenizer = Tokenizer.from_file(str(package / "tokenizers" / f"{MODEL}_tokenizer_config.json"))
        with safe_open(str(package / "weights" / f"{MODEL}_{DIMENSIONS}.safetensors"), framework="np") as weights:
            embedding = weights.get_tensor(next(iter(weights.keys())))
    except Exception as exc:  # a damaged or changed install: tokenizers and safetensors raise their own errors
        logger.warning("tool search ranks by words alone: wordllama's model %s cannot be read: %s", MODEL, exc)
        return None
    logger.debug("tool search ranks by meaning too (wordllama %s)", MODEL)
    return Embedder(WordLlamaInference(embedding, tokenizer))
