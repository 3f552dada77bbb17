"""``python -m gateway_core.shim``."""

from __future__ import annotations

from gateway_core.shim.cli import main

raise SystemExit(main())
