"""Builds gateway_core/frontend/related_words.tsv.gz, the related words on-demand search adds to a query.

From Princeton WordNet 3.0 (Debian's ``wordnet-base``: ``apt-get install wordnet-base`` puts it in
/usr/share/wordnet). For every one-word lemma, the words related to it in its most frequent senses
(WordNet orders a lemma's senses by how often they were seen in a tagged corpus): the synonyms of those
senses, the lemma's derivationally related forms (memory → remembering, compare → comparison), and a
verb sense's hypernyms (delete → remove).
Irregular forms (ran, mice) name the lemma they inflect. Run it again only to change what is kept:

    python scripts/build_related_words.py [--wordnet /usr/share/wordnet] [--senses 2]
"""

from __future__ import annotations

import argparse
import gzip
import re
import sys
from collections import defaultdict
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "gateway_core/frontend/related_words.tsv.gz"
POS = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
# Relations of a whole sense kept besides synonyms and derived forms, by part of speech: a verb's
# hypernym names what it is a way of doing (delete → remove, fetch → get).
SEMANTIC = {"verb": ("@",)}
_ONE_WORD = re.compile(r"^[a-z][a-z0-9]*$")
LICENSE = """\
# Related words for on-demand tool search, derived from WordNet 3.0 by scripts/build_related_words.py.
# WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved.
# Permission to use, copy, modify and distribute this software and database and its documentation for
# any purpose and without fee or royalty is hereby granted, provided that you agree to comply with the
# following copyright notice and statements, including the disclaimer, and that the same appear on ALL
# copies of the software, database and documentation, including modifications that you make for
# internal use or for distribution.
# THIS SOFTWARE AND DATABASE IS PROVIDED "AS IS" AND PRINCETON UNIVERSITY MAKES NO REPRESENTATIONS OR
# WARRANTIES, EXPRESS OR IMPLIED. BY WAY OF EXAMPLE, BUT NOT LIMITATION, PRINCETON UNIVERSITY MAKES NO
# REPRESENTATIONS OR WARRANTIES OF MERCHANTABILITY OR FITNESS FOR ANY PARTICULAR PURPOSE OR THAT THE USE
# OF THE LICENSED SOFTWARE, DATABASE OR DOCUMENTATION WILL NOT INFRINGE ANY THIRD PARTY PATENTS,
# COPYRIGHTS, TRADEMARKS OR OTHER RIGHTS.
# The name of Princeton University or Princeton may not be used in advertising or publicity pertaining
# to distribution of the software and/or database. Title to copyright in this software, database and
# any associated documentation shall at all times remain with Princeton University and LICENSEE agrees
# to preserve same.
# Format: a word, a tab, its related words separated by spaces.
"""


def synsets(wordnet: Path) -> dict[tuple[str, int], tuple[list[str], dict[int, list[tuple[str, int, int]]]]]:
    """Every synset by (data file, offset): its lemmas, and its derivation pointers by source word number."""
    found = {}
    for name in POS.values():
        for line in (wordnet / f"data.{name}").read_text(encoding="latin-1").splitlines():
            if line.startswith(" "):
                continue
            fields = line.split(" | ")[0].split()
            offset, count = int(fields[0]), int(fields[3], 16)
            lemmas = [fields[4 + 2 * i].lower() for i in range(count)]
            at = 4 + 2 * count
            pointers = int(fields[at])
            derived: dict[int, list[tuple[str, int, int]]] = defaultdict(list)
            for i in range(pointers):
                symbol, target, pos, where = fields[at + 1 + 4 * i : at + 5 + 4 * i]
                source, target_word = int(where[:2], 16), int(where[2:], 16)
                if symbol == "+" or symbol in SEMANTIC.get(name, ()):
                    derived[source].append((POS["a" if pos == "s" else pos], int(target), target_word))
            found[(name, offset)] = (lemmas, derived)
    return found


def related(wordnet: Path, senses: int) -> dict[str, set[str]]:
    """Each one-word lemma's related words, from its first ``senses`` senses in each part of speech."""
    table = synsets(wordnet)
    words: dict[str, set[str]] = defaultdict(set)
    for name in POS.values():
        for line in (wordnet / f"index.{name}").read_text(encoding="latin-1").splitlines():
            if line.startswith(" "):
                continue
            fields = line.split()
            lemma = fields[0]
            if not _ONE_WORD.match(lemma):
                continue
            synset_count, pointer_count = int(fields[2]), int(fields[3])
            offsets = [int(offset) for offset in fields[6 + pointer_count :]][:synset_count][:senses]
            for offset in offsets:
                lemmas, derived = table[(name, offset)]
                words[lemma].update(lemmas)
                for number, word in enumerate(lemmas, start=1):
                    if word != lemma:
                        continue
                    for pos, target, target_word in derived.get(number, []):
                        words[lemma].add(table[(pos, target)][0][target_word - 1])
                for pos, target, _ in derived.get(0, []):  # the sense's relations: all the target's words
                    words[lemma].update(table[(pos, target)][0])
    return {
        lemma: {word for word in found if word != lemma and _ONE_WORD.match(word)} for lemma, found in words.items()
    }


def main() -> None:
    """Writes the table (``--out``) and says how many words it holds on stderr."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wordnet", type=Path, default=Path("/usr/share/wordnet"))
    parser.add_argument("--senses", type=int, default=2, help="a lemma's most frequent senses kept, by part of speech")
    parser.add_argument("--out", type=Path, default=OUT)
    options = parser.parse_args()
    words = related(options.wordnet, options.senses)
    for name in POS.values():  # irregular forms: the lemmas they inflect
        for line in (options.wordnet / f"{name}.exc").read_text().splitlines():
            form, *bases = line.split()
            for base in bases:
                if _ONE_WORD.match(form) and form != base and base in words:
                    words.setdefault(form, set()).add(base)
    lines = [f"{word}\t{' '.join(sorted(found))}\n" for word, found in sorted(words.items()) if found]
    # No name and no time in the gzip header: the same WordNet gives the same bytes.
    options.out.write_bytes(gzip.compress((LICENSE + "".join(lines)).encode(), mtime=0))
    sys.stderr.write(f"{options.out}: {len(lines)} words, {options.out.stat().st_size:,} B\n")


if __name__ == "__main__":
    main()
