"""The one way a value reaches the executors for a pass: broadcast, use, destroy.

Iterations never capture driver state in closures: each pass broadcasts what it needs and
destroys it when the pass is over, on success and on failure alike, so executors' memory holds
one generation of centres or coefficients at a time however many iterations run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def broadcast_scope(sc, value: Any) -> Iterator[Any]:
    """Yield a broadcast of ``value`` (read it on the executors as ``.value``); destroy it after."""
    handle = sc.broadcast(value)
    try:
        yield handle
    finally:
        handle.destroy()
