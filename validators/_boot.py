"""Start a helper process that imports only ``validators`` (never ``cascade`` or the caller's path).

Warm workers (the sandbox's fork server, mypy workers) run ``python -E -s -c <source>``:
the source below puts the ``validators`` folder in place as a bare package, so importing
a worker module runs no ``validators/__init__.py`` and none of the engine.
"""

from __future__ import annotations

__all__ = ["boot_source"]

_TEMPLATE = """
import sys, types
root = sys.argv[1]
if sys.path and sys.path[0] in ("", root):
    del sys.path[0]
package = types.ModuleType("validators")
package.__path__ = [root]
sys.modules["validators"] = package
from validators.{module} import main
main({argument})
"""


def boot_source(module: str, argument: str = "sys.argv[2]") -> str:
    """``python -c`` source that runs ``validators.<module>.main(<argument>)``; argv[1] is the folder."""
    return _TEMPLATE.format(module=module, argument=argument)
