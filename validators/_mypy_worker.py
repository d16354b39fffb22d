"""A long-lived mypy process: reads programs on stdin, answers with mypy's report on stdout.

Run by :mod:`validators.typecheck` in a clean interpreter whose working
directory is private and whose environment is scrubbed.  mypy never runs the
code it checks; keeping one process alive keeps mypy imported and its cache
warm, so a check costs tens of milliseconds instead of seconds.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

__all__ = ["main"]


def main(home: str) -> None:
    import mypy.api

    os.chdir(home)
    config = os.path.join(home, "mypy.ini")
    with open(config, "w", encoding="utf-8") as handle:
        handle.write("[mypy]\n")
    for line in sys.stdin:
        try:
            request: dict[str, Any] = json.loads(line)
            path = os.path.join(home, f"{request.get('module', 'solution')}.py")
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(str(request["source"]))
            flags = [str(f) for f in request.get("flags", [])]
            args = [*flags, "--config-file", config, "--cache-dir", os.path.join(home, "cache"), path]
            stdout, stderr, status = mypy.api.run(args)
            reply = {"stdout": stdout, "stderr": stderr, "status": status}
        except Exception as exc:  # one bad request must not kill the worker
            reply = {"stdout": "", "stderr": f"{type(exc).__name__}: {exc}", "status": 2}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":  # pragma: no cover - started by validators.typecheck
    main(sys.argv[1])
