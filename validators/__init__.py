"""Validator implementations for cascade contracts.

Note: PyPI also has an unrelated package named ``validators``; this one ships
inside the ``cascade-llm`` distribution.  See the README.
"""

from validators._core import all_of, any_of, predicate, run_all

__all__ = ["all_of", "any_of", "predicate", "run_all"]
