"""The ``toolgate`` command line: ``main`` parses and dispatches; one module per command group.

``output`` is how every command speaks (results on stdout, messages and ``Error: …`` on stderr,
the exit codes); ``agents``, ``secrets``, ``config``, ``approvals``, ``logs`` and ``clients`` each
add their group to the parser.
"""

from gateway_core.cli.main import main

__all__ = ["main"]
