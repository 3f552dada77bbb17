"""``python -m gateway_core.cli``: the ``toolgate`` command without the tray app."""

from gateway_core.cli.main import main

raise SystemExit(main())
