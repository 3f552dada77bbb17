"""``toolgate-shim``: the stdio bridge IDEs will launch. Not in this version yet; it says so and exits.

Standard library only, like the real shim will be: IDEs start it often, so start-up time matters.
"""

from __future__ import annotations

import sys

EXIT_UNAVAILABLE = 2


def main(argv: list[str] | None = None) -> int:
    """Explain that the stdio bridge is not available yet and how to connect meanwhile."""
    print(
        "toolgate-shim: the stdio bridge is not part of this Toolgate version yet.\n"
        "Connect your agent over HTTP instead: point it at the URL `toolgate serve` prints "
        "(http://127.0.0.1:47800/mcp by default) with the header `Authorization: Bearer <token>` "
        "from `toolgate agents add ID`.",
        file=sys.stderr,
    )
    return EXIT_UNAVAILABLE


if __name__ == "__main__":
    raise SystemExit(main())
