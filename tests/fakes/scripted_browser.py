"""A "browser" for sign-in tests: GETs the URL it is given and follows every redirect, like a person approving.

    python tests/fakes/scripted_browser.py URL     (e.g. as ``BROWSER="python …/scripted_browser.py %s"``)

``follow(url)`` does the same in-process. The OAuth fake consents at once, so following its
``/authorize`` redirect lands on Toolgate's loopback redirect with a code.
"""

from __future__ import annotations

import sys

import httpx2

TIMEOUT_S = 30.0


async def follow(url: str) -> bool:
    """GET ``url`` and follow its redirects; whether the last page answered 200 (an opener for ``sign_in``)."""
    async with httpx2.AsyncClient(follow_redirects=True, timeout=TIMEOUT_S) as http:
        response = await http.get(url)
    return response.status_code == 200


def main() -> int:
    response = httpx2.get(sys.argv[1], follow_redirects=True, timeout=TIMEOUT_S)
    return 0 if response.status_code == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
