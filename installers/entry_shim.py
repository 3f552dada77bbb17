"""The frozen shim's entry point (``toolgate-shim``): the same ``main`` the installed console script runs."""

import sys

from gateway_core.shim import main

if __name__ == "__main__":
    sys.exit(main())
