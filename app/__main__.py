"""``python -m app``: the same as the ``toolgate`` command."""

import sys

from app.main import main

sys.exit(main())
