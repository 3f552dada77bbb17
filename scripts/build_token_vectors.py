"""Builds gateway_core/frontend/token_vectors.bin.gz, the table on-demand search ranks tools by meaning with.

From WordLlama's ``l2_supercat`` model (PyPI ``wordllama``, MIT; its model ships inside its wheel): a
vector for each of the 32,000 tokens of its tokenizer, whose mean over a text's tokens says what the text
is about. The table keeps the tokenizer's pieces and merges (so that ``tool_embeddings`` splits a word
into the same tokens) and the first ``--dims`` numbers of each token's vector (WordLlama is trained so
that a vector's first numbers carry most of its meaning), each token's numbers as signed bytes times one
scale. Run it again only to change what is kept:

    pip install 'wordllama>=0.4,<0.5'   # in the project's test extra
    python scripts/build_token_vectors.py [--dims 256]

Format (gzip): a JSON line {"model", "dims", "pieces", "merges", "license"}, then the scales (float32,
little-endian, one per token), then the numbers (int8, ``dims`` per token, token by token).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from array import array
from importlib.resources import files
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "gateway_core/frontend/token_vectors.bin.gz"
MODEL = "l2_supercat"
SOURCE_DIMENSIONS = 256
LICENSE = (
    "Token vectors of WordLlama's l2_supercat model (https://github.com/dleemiller/WordLlama), "
    "MIT License, Copyright (c) 2024 Lee Miller; its tokenizer is Llama 2's. Kept: the first DIMS numbers "
    "of each vector, quantized to signed bytes, by scripts/build_token_vectors.py."
)


def build(dims: int) -> bytes:
    """The table's bytes before compression, keeping ``dims`` numbers of each token's vector."""
    from safetensors import safe_open

    package = files("wordllama")
    config = json.loads((package / "tokenizers" / f"{MODEL}_tokenizer_config.json").read_text(encoding="utf-8"))
    model = config["model"]
    if model["type"] != "BPE" or not model.get("byte_fallback"):
        raise SystemExit(f"error: {MODEL}'s tokenizer is {model['type']}, not BPE with byte fallback as expected")
    vocab: dict[str, int] = model["vocab"]
    pieces = [""] * len(vocab)
    for piece, token in vocab.items():
        pieces[token] = piece
    merges = [merge if isinstance(merge, str) else " ".join(merge) for merge in model["merges"]]
    with safe_open(str(package / "weights" / f"{MODEL}_{SOURCE_DIMENSIONS}.safetensors"), framework="np") as weights:
        matrix = weights.get_tensor(next(iter(weights.keys()))).astype("float32")[:, :dims]
    if matrix.shape[0] != len(pieces):
        raise SystemExit(f"error: {matrix.shape[0]} vectors for {len(pieces)} tokens")
    scales = abs(matrix).max(axis=1) / 127.0
    scales[scales == 0] = 1.0
    numbers = (matrix / scales[:, None]).round().clip(-127, 127).astype("int8")
    header = {
        "model": MODEL,
        "dims": dims,
        "pieces": pieces,
        "merges": merges,
        "license": LICENSE.replace("DIMS", str(dims)),
    }
    scale_bytes = array("f", scales.astype("float32").tolist())
    if sys.byteorder != "little":
        scale_bytes.byteswap()
    return json.dumps(header, ensure_ascii=False).encode() + b"\n" + scale_bytes.tobytes() + numbers.tobytes()


def main() -> None:
    """Writes the table and says its size on stderr; the same model gives the same bytes."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dims", type=int, default=256, help="numbers kept of each token's vector (at most 256)")
    options = parser.parse_args()
    if not 1 <= options.dims <= SOURCE_DIMENSIONS:
        parser.error(f"--dims must be 1 to {SOURCE_DIMENSIONS}")
    OUT.write_bytes(gzip.compress(build(options.dims), compresslevel=9, mtime=0))
    sys.stderr.write(f"{OUT}: {options.dims} numbers a token, {OUT.stat().st_size:,} B\n")


if __name__ == "__main__":
    main()
