"""Per-snapshot memoisation for the engine's derived indexes.

A ``HostSnapshot`` is immutable, so anything computed from it alone (the netfilter pipeline,
the routing index, the parsed native ruleset, whether conntrack is in use) can be computed once
and reused by every trace on that snapshot. Snapshots are frozen slotted dataclasses without
weak references, so entries are keyed by ``id()`` and keep the snapshot alive: an id is never
reused while its entry exists. Each cached function keeps the results of its most recent
``size`` snapshots.

Pure: no I/O, no textual, no rich.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from functools import wraps
from typing import Any, TypeVar

from journey.model.snapshot import HostSnapshot

R = TypeVar("R")


def per_snapshot(size: int = 16) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Cache ``fn(snap, *args)`` by the snapshot's identity and the (hashable) other args."""

    def deco(fn: Callable[..., R]) -> Callable[..., R]:
        cache: OrderedDict[int, tuple[HostSnapshot, dict[tuple[Hashable, ...], R]]] = OrderedDict()

        @wraps(fn)
        def wrapper(snap: HostSnapshot, *args: Any) -> R:
            key = id(snap)
            entry = cache.get(key)
            if entry is None or entry[0] is not snap:
                entry = (snap, {})
                cache[key] = entry
                while len(cache) > size:
                    cache.popitem(last=False)
            else:
                cache.move_to_end(key)
            results = entry[1]
            if args in results:
                return results[args]
            value = fn(snap, *args)
            results[args] = value
            return value

        wrapper.cache_clear = cache.clear  # type: ignore[attr-defined]
        return wrapper

    return deco
