"""Tables on stdout that fit an 80-column terminal: only a free-text column gives way.

It gives way by being cut, marked with ``…`` (``--json`` has it whole), or, as the last column with
``wrap``, by going on in lines of its own under itself. Identifiers (server and agent names) are never
cut; a row whose identifiers alone are wider than the terminal runs past it rather than print a name
that is not the real one.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from gateway_core.cli.output import printable, result

# Tables fit an 80-column terminal.
TABLE_WIDTH = 80
GAP = "  "


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, give_way: int, wrap: bool = False) -> None:
    """Print ``rows`` under ``headers``, column ``give_way`` (free text) made narrower to fit.

    Args:
        headers: the column titles.
        rows: the cells, one sequence per row, as long as ``headers``.
        give_way: the index of the one column that may be narrowed.
        wrap: the ``give_way`` column, which must be the last, goes on in further lines rather than being cut.
    """
    table = [list(headers)] + [[printable(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    excess = sum(widths) + len(GAP) * (len(widths) - 1) - TABLE_WIDTH
    if excess > 0:
        widths[give_way] = max(widths[give_way] - excess, len(headers[give_way]))
    wrapping = wrap and give_way == len(headers) - 1
    indent = " " * (sum(widths[:give_way]) + len(GAP) * give_way)
    for row in table:
        lines = textwrap.wrap(row[give_way], widths[give_way]) if wrapping else []
        if lines:
            row = [*row[:give_way], lines[0]]
        cells = [fit(cell, width) for cell, width in zip(row, widths, strict=True)]
        result(GAP.join(cells).rstrip())
        for line in lines[1:]:
            result(indent + line)


def fit(text: str, width: int) -> str:
    """``text`` padded to ``width``, or cut to it with a closing ``…`` when longer."""
    return f"{text:<{width}}" if len(text) <= width else text[: width - 1] + "…"
