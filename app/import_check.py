"""PySide6's check of every module imported after it, without keeping each module's source in memory.

Importing PySide6 replaces Python's ``__import__`` with one that, after each import, asks whether the
module uses PySide6 (for ``from __feature__ import snake_case``; PYSIDE-2029). shiboken answers with
``inspect.getsource(module)``, which reads the whole file through ``linecache``, and linecache keeps
every line for the rest of the process. The tray app imports some 700 modules after PySide6 (the
gateway, the SDK, pydantic, uvicorn …): about 23 MB of source text held for nothing, read during
start-up. ``lighten()`` puts a check in its place that gives the same answer for every module read from
a file (whether its bytes contain "PySide6") and keeps nothing.

Toolgate never selects a PySide feature, so the answer only decides which modules PySide would switch
features for; it is kept exact all the same.
"""

from __future__ import annotations

import logging
import sys
from types import ModuleType

logger = logging.getLogger(__name__)

# Where shiboken keeps the check, and the name of the check in it (as in PySide6 6.11).
FEATURE_MODULE = "shibokensupport.feature"
CHECK = "_mod_uses_pyside"


def uses_pyside(module: ModuleType) -> bool:
    """Whether the file ``module`` was imported from mentions PySide6 (False for modules without one).

    The same answer as shiboken's own check for a module with a ``.py`` file: ``inspect.getsource`` of
    a module is its whole file. A module without a source file (built in, compiled, sourceless) has
    no source for either check.
    """
    file = getattr(module, "__file__", None)
    if not isinstance(file, str) or not file.endswith(".py"):
        return False
    try:
        with open(file, "rb") as source:
            return b"PySide6" in source.read()
    except OSError:
        return False


def lighten() -> bool:
    """Put ``uses_pyside`` in the place of shiboken's check (importing PySide6 if not yet); whether it could."""
    import PySide6.QtCore  # noqa: F401  (what installs shiboken's import hook and its feature module)

    feature = sys.modules.get(FEATURE_MODULE)
    if feature is None or not callable(getattr(feature, CHECK, None)):
        logger.debug("PySide6 has no %s.%s; its import check is left as it is", FEATURE_MODULE, CHECK)
        return False
    setattr(feature, CHECK, uses_pyside)
    return True
