"""``python -m gateway_core.shim``."""

from __future__ import annotations

from . import main

raise SystemExit(main())
