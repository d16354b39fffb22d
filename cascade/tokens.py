"""Token estimates for when no provider reported a count.

No tokenizer's vocabulary can be downloaded at run time here, so estimates
use the common ~4 characters per token rule; every estimate is flagged
(``Usage.estimated``) and reports say so.
"""

from __future__ import annotations

__all__ = ["CHARS_PER_TOKEN", "estimate_tokens"]

CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    """About how many tokens ``text`` is; at least 1 for any call."""
    return max(1, -(-len(text) // CHARS_PER_TOKEN))
