"""Tables on stdout that fit an 80-column terminal: only a free-text column gives way, marked with ``…``.

Identifiers (server and agent names) are never cut; a row whose identifiers alone are wider than the
terminal runs past it rather than print a name that is not the real one.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway_core.cli.output import printable, result

# Tables fit an 80-column terminal.
TABLE_WIDTH = 80
GAP = "  "


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, give_way: int) -> None:
    """Print ``rows`` under ``headers``, column ``give_way`` (free text) shortened with ``…`` to fit.

    Args:
        headers: the column titles.
        rows: the cells, one sequence per row, as long as ``headers``.
        give_way: the index of the one column that may be shortened.
    """
    table = [list(headers)] + [[printable(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    excess = sum(widths) + len(GAP) * (len(widths) - 1) - TABLE_WIDTH
    if excess > 0:
        widths[give_way] = max(widths[give_way] - excess, len(headers[give_way]))
    for row in table:
        cells = [fit(cell, width) for cell, width in zip(row, widths, strict=True)]
        result(GAP.join(cells).rstrip())


def fit(text: str, width: int) -> str:
    """``text`` padded to ``width``, or cut to it with a closing ``…`` when longer."""
    return f"{text:<{width}}" if len(text) <= width else text[: width - 1] + "…"
