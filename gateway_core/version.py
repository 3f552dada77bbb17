"""Toolgate's version, read from the installed distribution's metadata."""

from __future__ import annotations

import functools
from importlib.metadata import PackageNotFoundError, version


@functools.cache
def toolgate_version() -> str:
    """The installed Toolgate version, or ``0+unknown`` when running from an uninstalled tree."""
    try:
        return version("toolgate")
    except PackageNotFoundError:
        return "0+unknown"
