"""Words related to an English word (synonyms, derived forms), so a task can find a tool in other words.

From ``related_words.tsv.gz`` beside this module (700 kB), built from WordNet 3.0 by
``scripts/build_related_words.py``: for each word, the synonyms of its two most frequent senses in each
part of speech, its derivationally related forms and a verb's hypernyms (*remember* → *recall*,
*compare* → *comparison*, *sum* → *total*, *delete* → *remove*). An inflected word is first reduced
with WordNet's detachment rules (*commits* → *commit*). Read on the first look-up (about 55,000 words,
150 ms) and kept (about 10 MB).
"""

from __future__ import annotations

import gzip
from functools import cache
from pathlib import Path

TABLE = Path(__file__).with_name("related_words.tsv.gz")
# WordNet's detachment rules (morphy): an inflected ending and the lemma's ending, tried in turn.
_ENDINGS = (
    ("ses", "s"),
    ("xes", "x"),
    ("zes", "z"),
    ("ches", "ch"),
    ("shes", "sh"),
    ("men", "man"),
    ("ies", "y"),
    ("es", "e"),
    ("es", ""),
    ("ed", "e"),
    ("ed", ""),
    ("ing", "e"),
    ("ing", ""),
    ("er", ""),
    ("est", ""),
    ("er", "e"),
    ("est", "e"),
    ("s", ""),
)


@cache
def _table() -> dict[str, str]:
    # Beside this module, in a source tree, an installed package and the app bundles alike (toolgate.spec).
    text = gzip.decompress(TABLE.read_bytes()).decode()
    table = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            word, _, related = line.partition("\t")
            table[word] = related
    return table


def related(word: str) -> list[str]:
    """The words related to ``word`` (lower case), or to the first lemma its ending reduces to; may be empty."""
    table = _table()
    found = table.get(word)
    if found is None:
        for ending, lemma_ending in _ENDINGS:
            if word.endswith(ending) and len(word) > len(ending) + 1:
                found = table.get(word[: len(word) - len(ending)] + lemma_ending)
                if found is not None:
                    break
    return found.split() if found else []
