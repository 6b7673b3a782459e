"""A native nftables ruleset (``nft -j list ruleset``) as immutable values.

Ruleset -> Table (family, name, flags) -> chains (base chains with type / hook / priority /
policy / device, and regular chains) with their rules, named sets and maps (with their
elements: values, prefixes, ranges, concatenations, timeouts), flowtables and stateful objects
(counters, quotas, limits, ct helpers, ct timeouts, ...).

Rule statements and expressions are kept as *frozen JSON*: the libnftables-json(5) values with
lists turned into tuples and objects into ``JMap`` (an ordered, hashable mapping), so nothing
of the source is lost and the engine (``journey.engine.netfilter.nft_eval``) and the renderer
(``journey.model.nft_text``) read the same values. The parser is
``journey.snapshot.nft_json``.

Pure data: no I/O, no textual, no rich.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Union

# -- frozen JSON ------------------------------------------------------------------------------

JSON = Union[None, bool, int, float, str, tuple["JSON", ...], "JMap"]


@dataclass(frozen=True, slots=True)
class JMap:
    """A JSON object, frozen: its (key, value) pairs in source order."""

    items: tuple[tuple[str, JSON], ...]

    def get(self, key: str, default: JSON = None) -> JSON:
        for k, v in self.items:
            if k == key:
                return v
        return default

    def __contains__(self, key: object) -> bool:
        return any(k == key for k, _ in self.items)

    def __getitem__(self, key: str) -> JSON:
        for k, v in self.items:
            if k == key:
                return v
        raise KeyError(key)

    def keys(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.items)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.items)

    def single(self) -> tuple[str, JSON] | None:
        """``{"kind": body}`` -> ("kind", body); None when the object has not exactly one key."""
        if len(self.items) == 1:
            return self.items[0]
        return None

    def to_python(self) -> dict[str, object]:
        return {k: thaw(v) for k, v in self.items}


def freeze(value: object) -> JSON:
    """A parsed ``json`` value -> frozen JSON (lists -> tuples, dicts -> JMap)."""
    if isinstance(value, dict):
        return JMap(tuple((str(k), freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def thaw(value: JSON) -> object:
    """Frozen JSON -> plain ``json`` values (for re-serialising)."""
    if isinstance(value, JMap):
        return value.to_python()
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


# -- ruleset ----------------------------------------------------------------------------------

NETDEV_HOOKS = ("ingress", "egress")
FAMILIES = ("ip", "ip6", "inet", "arp", "bridge", "netdev")


@dataclass(frozen=True, slots=True)
class NftRule:
    """One rule: its handle, position in the chain (1-based), statements and comment."""

    family: str
    table: str
    chain: str
    handle: int | None
    index: int
    exprs: tuple[JSON, ...]
    comment: str | None = None
    path: str = ""  # JSON path of the object in the dump, e.g. "nftables[12]"
    text: str = ""  # as ``nft list ruleset`` prints it (filled by the parser)

    @property
    def counters(self) -> tuple[int, int] | None:
        """(packets, bytes) of the rule's first anonymous counter statement."""
        for s in self.exprs:
            if isinstance(s, JMap):
                c = s.get("counter")
                if isinstance(c, JMap):
                    p, b = c.get("packets"), c.get("bytes")
                    if isinstance(p, int) and isinstance(b, int):
                        return p, b
        return None


@dataclass(frozen=True, slots=True)
class NftChain:
    """A chain. Base chains have ``hook`` (and type, priority, policy; ``device`` for netdev)."""

    family: str
    table: str
    name: str
    handle: int | None = None
    type: str | None = None  # filter | nat | route
    hook: str | None = None  # prerouting | input | forward | output | postrouting | ingress | egress
    priority: int | None = None
    policy: str | None = None  # accept | drop
    devices: tuple[str, ...] = ()  # netdev: nft 1.0.6 omits them from JSON output
    rules: tuple[NftRule, ...] = ()
    path: str = ""

    @property
    def base(self) -> bool:
        return self.hook is not None


@dataclass(frozen=True, slots=True)
class NftElement:
    """One element of a set or map: key (value, prefix, range or concat) and, in a map, data."""

    key: JSON
    data: JSON = None
    timeout: int | None = None  # seconds
    expires: int | None = None  # seconds
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class NftSet:
    """A named set or map (``map_type`` is set for maps; ``"verdict"`` for verdict maps)."""

    family: str
    table: str
    name: str
    type: tuple[str, ...]  # one entry per concatenated component
    handle: int | None = None
    map_type: tuple[str, ...] | None = None
    flags: tuple[str, ...] = ()  # constant, interval, timeout, dynamic, ...
    elements: tuple[NftElement, ...] = ()
    timeout: int | None = None
    gc_interval: int | None = None
    size: int | None = None
    policy: str | None = None
    typeof: JSON = None  # nft >= 1.0 keeps "typeof" expressions when the set was made with them
    kind: str = "set"  # "set" | "map" | "meter"
    path: str = ""

    @property
    def is_map(self) -> bool:
        return self.map_type is not None

    @property
    def is_vmap(self) -> bool:
        return self.map_type == ("verdict",)

    @property
    def interval(self) -> bool:
        return "interval" in self.flags


@dataclass(frozen=True, slots=True)
class NftFlowtable:
    family: str
    table: str
    name: str
    hook: str | None = None
    priority: int | None = None
    devices: tuple[str, ...] = ()
    handle: int | None = None
    path: str = ""


@dataclass(frozen=True, slots=True)
class NftObject:
    """A stateful object: counter, quota, limit, ct helper, ct timeout, ct expectation, secmark,
    synproxy. ``props`` keeps every property as given."""

    kind: str
    family: str
    table: str
    name: str
    props: JMap
    handle: int | None = None
    path: str = ""


@dataclass(frozen=True, slots=True)
class NftTable:
    family: str
    name: str
    handle: int | None = None
    flags: tuple[str, ...] = ()  # dormant, owner, persist
    chains: tuple[NftChain, ...] = ()
    sets: tuple[NftSet, ...] = ()
    flowtables: tuple[NftFlowtable, ...] = ()
    objects: tuple[NftObject, ...] = ()
    path: str = ""

    def chain(self, name: str) -> NftChain | None:
        for c in self.chains:
            if c.name == name:
                return c
        return None

    def set(self, name: str) -> NftSet | None:
        for s in self.sets:
            if s.name == name:
                return s
        return None

    def object(self, kind: str, name: str) -> NftObject | None:
        for o in self.objects:
            if o.kind == kind and o.name == name:
                return o
        return None

    @property
    def base_chains(self) -> tuple[NftChain, ...]:
        return tuple(c for c in self.chains if c.base)

    @property
    def rule_count(self) -> int:
        return sum(len(c.rules) for c in self.chains)

    @property
    def has_xt(self) -> bool:
        """Some rule holds an ``xt`` statement (the table was made by iptables-nft)."""
        return any(_has_xt(e) for c in self.chains for r in c.rules for e in r.exprs)

    @property
    def dormant(self) -> bool:
        return "dormant" in self.flags


def _has_xt(e: JSON) -> bool:
    return isinstance(e, JMap) and "xt" in e


@dataclass(frozen=True, slots=True)
class NftRuleset:
    """Everything ``nft -j list ruleset`` printed."""

    tables: tuple[NftTable, ...] = ()
    version: str | None = None  # nftables version from metainfo
    json_schema_version: int | None = None
    source: str = ""

    def table(self, family: str, name: str) -> NftTable | None:
        for t in self.tables:
            if t.family == family and t.name == name:
                return t
        return None

    @property
    def rule_count(self) -> int:
        return sum(t.rule_count for t in self.tables)
