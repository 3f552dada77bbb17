"""Ranks the routed tools against a free-text query, for on-demand agents' ``get_server_tools``.

An in-memory SQLite FTS5 index (stdlib ``sqlite3``) over each tool's name, title, description and
parameters (names and descriptions), ranked by BM25 with a name match worth most. Names are split into
words first (``get_current_time``, ``getCurrentTime`` → ``get current time``), and words are stemmed
(Porter). A web address in a query (``https://…`` or a bare ``example.org``) stands for the word ``url``,
and a number for the word ``number``: what a tool takes says more than the value's own characters. So
that a task put in other words finds its tool, each tool is also indexed under the words related to
those of its name, title and description (``related_words``: *sum* → *total*, *delete* → *remove*…),
a match there worth least.
Given an embedder (``tool_embeddings``: WordLlama's token vectors, shipped with Toolgate), a tool's
relevance also counts how close the query is to it in meaning, which finds tools that share no word
with it.
A tool its description marks deprecated (``DEPRECATED: use … instead``) ranks at half its relevance, so
that the tool named in its place comes first.
The index belongs to one routing table: a search against a newer table rebuilds it first, so it
follows every catalog change. Used on the event loop only; a build of 500 tools takes milliseconds.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Mapping

import mcp_types as types

from gateway_core.frontend.related_words import related
from gateway_core.frontend.routing import Routes
from gateway_core.frontend.tool_embeddings import Embedder, Meanings

# With an embedder: a tool's relevance is its BM25 score (the best match's taken as 1) plus this many times
# its cosine similarity to the query; a tool that shares no word with the query must be at least this similar.
MEANING_WEIGHT = 2.0
MEANING_FLOOR = 0.2
# BM25 weights of the columns, in table order (the public name itself is not searched): a word of the
# name says most about what a tool does.
_WEIGHTS = (0.0, 5.0, 3.0, 1.0, 1.5, 0.5)
_WORD = re.compile(r"[A-Za-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
# A task naming a web address needs a tool that takes a URL; the address's own words (host, path) are noise.
# Without a scheme, a host name counts only under a common top-level domain (``config.yaml`` is a file).
_URL = re.compile(
    r"\b[a-z][a-z0-9+.-]*://\S+|\b(?:www\.)?(?:[a-z0-9-]+\.)+(?:com|org|net|edu|gov|io|dev|app|ai|co|info)\b(?:/\S*)?",
    re.IGNORECASE,
)
# A task giving a number (``add 17 and 25``) needs a tool that takes one; the digits themselves match nothing.
_NUMBER = re.compile(r"(?<![\w.])[+-]?\d+(?:\.\d+)?(?![\w.])")
# How a description marks its tool deprecated, and what that leaves of its relevance.
_DEPRECATED = re.compile(r"^\W*[Dd]eprecated\b|\bDEPRECATED\b|\b[Dd]eprecated:|\b(?:is|now) deprecated\b")
DEPRECATED_FACTOR = 0.5
# Words that say nothing about a tool; left out of queries so they cannot decide a ranking.
_STOP_WORDS = frozenset(
    "a an and are as at be by can do does for from how i in is it me my of on or please "
    "that the this to use what when where which who with you".split()
)


def words(text: str) -> str:
    """``text`` as lower-case words: camelCase and ``snake_case`` split, punctuation dropped."""
    return " ".join(part.lower() for word in _WORD.findall(text) for part in _CAMEL.split(word) if part)


def query_words(query: str) -> list[str]:
    """The words of a free-text query that can rank tools (stop words left out, unless nothing else is left).

    A web address counts as the one word ``url``, a number as the word ``number``.
    """
    found = words(_NUMBER.sub(" number ", _URL.sub(" url ", query))).split()
    kept = [word for word in found if word not in _STOP_WORDS]
    return list(dict.fromkeys(kept or found))


class ToolIndex:
    """A full-text index of one routing table's tools; ``search`` rebuilds it for a newer table."""

    def __init__(self) -> None:
        self._db: sqlite3.Connection | None = None
        self._routes: Routes | None = None
        self._meanings: tuple[Routes, Embedder, Meanings] | None = None
        self._deprecated: frozenset[str] = frozenset()

    def search(self, routes: Routes, query: str, embedder: Embedder | None = None) -> list[str]:
        """The public names of ``routes``' tools that match ``query``, most relevant first (see ``scored``)."""
        return [name for name, _ in self.scored(routes, query, embedder)]

    def scored(self, routes: Routes, query: str, embedder: Embedder | None = None) -> list[tuple[str, float]]:
        """The public names of ``routes``' tools that match ``query`` with their relevance, most relevant first.

        A tool matches when any query word (or a word with the same stem, or that it begins) is in its
        name, title, description, its parameters' names and descriptions, or among the words related to
        those of its name, title and description. With ``embedder``, a tool at least ``MEANING_FLOOR``
        similar in meaning matches too, and similarity adds to relevance. An empty query matches nothing.
        Relevance compares tools within one search only: its scale depends on the query and the catalogue.
        """
        terms = query_words(query)
        if not terms:
            return []
        db = self._index(routes)
        expression = " OR ".join(f'"{term}"*' for term in terms)
        rows = db.execute(
            f"SELECT name, -bm25(tools, {', '.join(map(str, _WEIGHTS))}) FROM tools WHERE tools MATCH ?",
            (expression,),
        ).fetchall()
        scores: dict[str, float] = dict(rows)
        if embedder is not None:
            best = max(scores.values(), default=1.0) or 1.0
            scores = {name: score / best for name, score in scores.items()}
            meanings = self.meanings(routes, embedder)
            for tool, similarity in zip(routes.tool_list, meanings.similarity(query), strict=True):
                if tool.name in scores or similarity >= MEANING_FLOOR:
                    scores[tool.name] = scores.get(tool.name, 0.0) + MEANING_WEIGHT * similarity
        for name in self._deprecated.intersection(scores):
            scores[name] *= DEPRECATED_FACTOR
        return sorted(scores.items(), key=lambda item: -item[1])

    def close(self) -> None:
        """Free the index (a later search builds it again)."""
        if self._db is not None:
            self._db.close()
        self._db, self._routes, self._meanings = None, None, None

    def knows_meanings(self, routes: Routes, embedder: Embedder) -> bool:
        """Whether the meanings of ``routes``' tools by ``embedder`` are worked out already."""
        known = self._meanings
        return known is not None and known[0] is routes and known[1] is embedder

    def meanings(self, routes: Routes, embedder: Embedder) -> Meanings:
        """The meanings of ``routes``' tools (name, title, description), in listing order, kept for ``routes``.

        Working them out for a new catalogue takes up to a few hundred milliseconds for 500 tools (less
        for tools whose text ``embedder`` has seen): a caller on the event loop calls this in a thread
        first. The index itself (SQLite) is built and searched on the loop only.
        """
        if self._meanings is not None and self.knows_meanings(routes, embedder):
            return self._meanings[2]
        texts = [f"{words(tool.name)}. {tool.title or ''} {tool.description or ''}" for tool in routes.tool_list]
        meanings = embedder.meanings(texts)
        self._meanings = (routes, embedder, meanings)
        return meanings

    def _index(self, routes: Routes) -> sqlite3.Connection:
        if self._db is not None and self._routes is routes:
            return self._db
        if self._db is not None:
            self._db.close()
        db = sqlite3.connect(":memory:")
        db.execute(
            "CREATE VIRTUAL TABLE tools USING fts5("
            "name UNINDEXED, name_words, title, description, parameters, related, tokenize = 'porter unicode61')"
        )
        db.executemany("INSERT INTO tools VALUES (?, ?, ?, ?, ?, ?)", _rows(routes.tool_list))
        self._db, self._routes = db, routes
        self._deprecated = frozenset(
            tool.name for tool in routes.tool_list if _DEPRECATED.search(tool.description or "") is not None
        )
        return db


def _rows(tools: Iterable[types.Tool]) -> Iterable[tuple[str, str, str, str, str, str]]:
    for tool in tools:
        name, title, description = words(tool.name), words(tool.title or ""), tool.description or ""
        yield tool.name, name, title, description, _parameters(tool), _related(f"{name} {title} {description}")


def _related(text: str) -> str:
    """The words related to those of ``text`` (stop words left out)."""
    own = words(text).split()
    return " ".join(dict.fromkeys(found for word in own if word not in _STOP_WORDS for found in related(word)))


def _parameters(tool: types.Tool) -> str:
    properties = tool.input_schema.get("properties")
    if not isinstance(properties, Mapping):
        return ""
    texts = []
    for name, schema in properties.items():
        texts.append(words(str(name)))
        description = schema.get("description") if isinstance(schema, Mapping) else None
        if isinstance(description, str):
            texts.append(description)
    return " ".join(texts)
