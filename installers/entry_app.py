"""The frozen GUI app's entry point (``toolgate``): the same ``main`` the installed console script runs."""

import sys

from app.main import main

if __name__ == "__main__":
    sys.exit(main())
