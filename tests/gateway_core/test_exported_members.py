import subprocess
import sys

import gateway_core


def test_every_exported_name_resolves():
    assert sorted(gateway_core.__all__) == gateway_core.__all__
    for name in gateway_core.__all__:
        assert getattr(gateway_core, name) is not None, name


def test_importing_the_package_imports_neither_the_sdk_nor_qt():
    heavy = "('mcp', 'PySide6', 'qasync', 'pydantic')"
    code = f"import sys, gateway_core; print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy}))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)

    assert loaded.stdout.strip() == "[]"
