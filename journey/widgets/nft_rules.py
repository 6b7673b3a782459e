"""The snapshot's native nftables ruleset as the TUI shows it (rules browser, journey context).

``native_rules(snapshot)`` parses the raw ``nft -j list ruleset`` dump kept in the snapshot
(with each rule's text in nft syntax) and marks the tables iptables-nft made, which the
browser already lists from iptables-save. It is slow on big dumps, so call it from a thread
worker; the result is cached per snapshot. The parser and the engine's table classification
are imported on first use (after the first frame). No textual, no rich: plain values.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from journey.model.nft import NftChain, NftRuleset, NftTable
    from journey.model.snapshot import HostSnapshot

NFT_DUMP = "nft -j list ruleset"


@dataclass(frozen=True, slots=True)
class NativeRules:
    """The parsed native ruleset, the (family, table) pairs iptables-nft owns, and any error."""

    ruleset: NftRuleset | None
    iptables_nft: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    error: str | None = None

    def is_iptables_nft(self, table: NftTable) -> bool:
        return (table.family, table.name) in self.iptables_nft

    def native_tables(self) -> tuple[NftTable, ...]:
        """Tables made with nft itself (not iptables-nft's)."""
        if self.ruleset is None:
            return ()
        return tuple(t for t in self.ruleset.tables if not self.is_iptables_nft(t))

    def table(self, family: str | None, name: str | None) -> NftTable | None:
        if self.ruleset is None or name is None:
            return None
        for t in self.ruleset.tables:
            if t.name == name and (family is None or t.family == family):
                return t
        return None

    def base_chain(self, family: str | None, table: str | None, hook: str | None,
                   priority: int | None, chain: str | None = None) -> NftChain | None:
        """The chain a journey stage walked: by name, else the base chain on hook + priority."""
        t = self.table(family, table)
        if t is None:
            return None
        if chain:
            c = t.chain(chain)
            if c is not None:
                return c
        for c in t.chains:
            if c.hook == hook and (priority is None or c.priority == priority):
                return c
        return None


_lock = threading.Lock()
_cache: dict[int, tuple[HostSnapshot, NativeRules | None]] = {}


def native_rules(snapshot: HostSnapshot) -> NativeRules | None:
    """The snapshot's native nft ruleset (None when it holds no nft dump); cached."""
    with _lock:
        hit = _cache.get(id(snapshot))
        if hit is not None and hit[0] is snapshot:
            return hit[1]
    raw = snapshot.raw_dump(NFT_DUMP)
    result: NativeRules | None = None
    if raw is not None and raw.text.strip():
        from journey.errors import JourneyError
        from journey.snapshot.nft_json import parse_nft_json

        try:
            rs = parse_nft_json(raw.text, source=raw.source or NFT_DUMP)
        except JourneyError as e:
            result = NativeRules(None, error=e.text())
        else:
            try:
                from journey.engine.netfilter.nft_eval import iptables_nft_tables

                owned = frozenset(iptables_nft_tables(snapshot, rs))
            except ImportError:  # pragma: no cover - the engine ships with the package
                owned = frozenset((t.family, t.name) for t in rs.tables if t.has_xt)
            result = NativeRules(rs, owned)
    with _lock:
        if len(_cache) > 8:
            _cache.clear()
        _cache[id(snapshot)] = (snapshot, result)
    return result


def cached_native_rules(snapshot: HostSnapshot | None) -> NativeRules | None:
    """The cached result when already parsed (never parses: safe on the UI thread)."""
    if snapshot is None:
        return None
    with _lock:
        hit = _cache.get(id(snapshot))
    return hit[1] if hit is not None and hit[0] is snapshot else None


def counters_text(c: tuple[int, int] | None) -> str:
    return "" if c is None else f"[{c[0]}:{c[1]}]"
