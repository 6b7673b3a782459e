"""The netfilter pipeline as data: every base chain of a snapshot, ordered by (hook, priority).

An iptables table registers one base chain per hook it serves (``filter`` on input/forward/
output, ``nat`` on all four NAT hooks, ...), at a fixed priority (raw -300, mangle -150, dstnat
-100, filter 0, security 50, srcnat 100). ``build_pipeline`` turns the snapshot's parsed
iptables dumps (nft-backed and legacy, IPv4 and IPv6) into ``BaseChain`` values, sorted by
priority per hook, so native nftables chains (a later issue) can be slotted in by priority.

Equal priorities: iptables-nft and iptables-legacy both register a ``filter`` INPUT hook at
priority 0. The kernel (``nf_hook_entries_grow``) inserts a new hook *before* existing ones of
the same priority, so the table registered last runs first; a snapshot cannot tell which was
registered last. We put iptables-nft before iptables-legacy (the usual order on hosts where a
legacy tool such as ferm ran at boot and an nft-backed one later) and say so in the stage notes
(``ORDER_NOTE``). Between nf_tables base chains (iptables-nft tables and native nft tables) of
equal priority the snapshot does tell: table handles count up in creation order, so the table
with the higher handle registered its hooks later and runs first (``NFT_ORDER_NOTE``).

Pure: depends only on ``journey.model``; no I/O, no textual, no rich.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from journey.engine.cache import per_snapshot
from journey.model.family import Family
from journey.model.ruleset import Backend, Chain, IptablesDump, Table
from journey.model.snapshot import HostSnapshot

__all__ = [
    "BACKEND_LABEL",
    "NFT_ORDER_NOTE",
    "ORDER_NOTE",
    "PRIORITIES",
    "TABLE_HOOKS",
    "BaseChain",
    "Hook",
    "Pipeline",
    "build_pipeline",
    "priority_of",
]


class Hook(enum.StrEnum):
    """A netfilter hook of the IP stack."""

    PREROUTING = "prerouting"
    INPUT = "input"
    FORWARD = "forward"
    OUTPUT = "output"
    POSTROUTING = "postrouting"

    @property
    def chain_name(self) -> str:
        """The iptables built-in chain served by this hook (``PREROUTING``...)."""
        return self.value.upper()


# Priorities of the iptables tables (NF_IP_PRI_*; the nft names are in the comments).
PRIORITIES: dict[str, int] = {
    "raw": -300,  # NF_IP_PRI_RAW, nft "raw"
    "conntrack": -200,  # NF_IP_PRI_CONNTRACK (not a table: the conntrack lookup itself)
    "mangle": -150,  # "mangle"
    "dstnat": -100,  # NAT in PREROUTING / OUTPUT
    "filter": 0,  # "filter"
    "security": 50,  # "security"
    "srcnat": 100,  # NAT in INPUT / POSTROUTING
}

# Which built-in chains each table has (one base chain per hook).
TABLE_HOOKS: dict[str, tuple[Hook, ...]] = {
    "raw": (Hook.PREROUTING, Hook.OUTPUT),
    "mangle": (Hook.PREROUTING, Hook.INPUT, Hook.FORWARD, Hook.OUTPUT, Hook.POSTROUTING),
    "nat": (Hook.PREROUTING, Hook.INPUT, Hook.OUTPUT, Hook.POSTROUTING),
    "filter": (Hook.INPUT, Hook.FORWARD, Hook.OUTPUT),
    "security": (Hook.INPUT, Hook.FORWARD, Hook.OUTPUT),
}

BACKEND_LABEL: dict[str, str] = {
    "nft": "iptables-nft",
    "legacy": "iptables-legacy",
    "native": "nft",
}

ORDER_NOTE = (
    "iptables-nft and iptables-legacy both hook here at the same priority; the kernel runs the "
    "one registered last first, which a snapshot cannot tell: journey assumes iptables-nft "
    "before iptables-legacy"
)


NFT_ORDER_NOTE = (
    "several nftables tables hook here at the same priority: the kernel runs the base chain "
    "registered last first; journey orders them by table handle (creation order), which is "
    "wrong only if a base chain was added to an older table later"
)


def priority_of(table: str, hook: Hook) -> int:
    """Priority of an iptables table's base chain on a hook."""
    if table == "nat":
        return PRIORITIES["dstnat"] if hook in (Hook.PREROUTING, Hook.OUTPUT) else PRIORITIES["srcnat"]
    return PRIORITIES[table]


def _kind(table: str, hook: Hook) -> str:
    if table == "nat":
        return "nat"
    if table == "mangle" and hook is Hook.OUTPUT:
        return "route"  # mangle OUTPUT re-routes when the packet changed (ip_route_me_harder)
    return "filter"


_BACKEND_ORDER = {"nft": 0, "legacy": 1, "native": 2}


@dataclass(frozen=True, slots=True)
class BaseChain:
    """One base chain registered on a hook."""

    hook: Hook
    priority: int
    nf_family: str  # "ip" | "ip6" | "inet"
    table: str
    chain: str
    backend: str  # "nft" (iptables-nft) | "legacy" | "native" (nft ruleset, later)
    kind: str  # "filter" | "nat" | "route"
    policy: str  # ACCEPT / DROP
    handle: int = 0  # nf_tables table handle (creation order; 0: unknown / legacy)

    @property
    def family(self) -> Family:
        return Family.IPV6 if self.nf_family == "ip6" else Family.IPV4

    @property
    def label(self) -> str:
        """``PREROUTING · nat (iptables-nft)``: the stage name."""
        return f"{self.hook.chain_name} · {self.table} ({BACKEND_LABEL.get(self.backend, self.backend)})"


class Pipeline:
    """The base chains of one snapshot, by hook and family, in priority order."""

    __slots__ = ("_by_hook", "_dumps", "compiled")

    def __init__(self, chains: tuple[BaseChain, ...], dumps: dict[tuple[str, str], IptablesDump]) -> None:
        by_hook: dict[tuple[Hook, Family], list[BaseChain]] = {}
        for c in chains:
            by_hook.setdefault((c.hook, c.family), []).append(c)
            if c.nf_family == "inet":
                other = Family.IPV6
                by_hook.setdefault((c.hook, other), []).append(c)
        self._by_hook: dict[tuple[Hook, Family], tuple[BaseChain, ...]] = {
            k: tuple(sorted(v, key=_order_key))
            for k, v in by_hook.items()
        }
        self._dumps = dumps
        self.compiled: dict[tuple[str, str, str], object] = {}  # walker's compiled tables

    def chains(self, hook: Hook, family: Family) -> tuple[BaseChain, ...]:
        """Every table's base chain on that hook for that family, by priority."""
        return self._by_hook.get((hook, family), ())

    def all_chains(self) -> tuple[BaseChain, ...]:
        out: list[BaseChain] = []
        for v in self._by_hook.values():
            out.extend(v)
        return tuple(out)

    def dump(self, nf_family: str, backend: str) -> IptablesDump | None:
        """The iptables dump a base chain comes from."""
        return self._dumps.get((nf_family, backend))

    def table(self, base: BaseChain) -> Table | None:
        d = self._dumps.get((base.nf_family, base.backend))
        return d.table(base.table) if d is not None else None

    def mixed_backends(self, hook: Hook, family: Family) -> bool:
        """Both iptables-legacy and an nf_tables backend have a base chain on this hook."""
        backends = {c.backend for c in self.chains(hook, family)}
        return "legacy" in backends and len(backends) > 1

    def nft_tie(self, base: BaseChain) -> bool:
        """Another nf_tables table has a base chain at the same priority on ``base``'s hook."""
        if base.backend == "legacy":
            return False
        return any(c.priority == base.priority and c.backend != "legacy"
                   and (c.nf_family, c.table) != (base.nf_family, base.table)
                   for c in self.chains(base.hook, base.family))


def _order_key(c: BaseChain) -> tuple[int, int, int, int]:
    """Priority, then nf_tables before legacy, then the later-created nf_tables table first
    (``nf_hook_entries_grow`` inserts a new hook before those of equal priority)."""
    return (c.priority, 1 if c.backend == "legacy" else 0, -c.handle,
            _BACKEND_ORDER.get(c.backend, 9))


@per_snapshot()
def build_pipeline(snap: HostSnapshot) -> Pipeline:
    """The pipeline of a snapshot (cached per snapshot: snapshots are immutable)."""
    chains: list[BaseChain] = []
    dumps: dict[tuple[str, str], IptablesDump] = {}
    for dump in snap.iptables:
        nf_family = "ip6" if dump.family is Family.IPV6 else "ip"
        backend = "legacy" if dump.backend is Backend.LEGACY else "nft"
        dumps[(nf_family, backend)] = dump
        for table in dump.tables:
            hooks = TABLE_HOOKS.get(table.name, ())
            for hook in hooks:
                chain: Chain | None = table.chain(hook.chain_name)
                if chain is None:
                    continue  # iptables-nft creates built-in chains on demand
                chains.append(BaseChain(
                    hook=hook, priority=priority_of(table.name, hook), nf_family=nf_family,
                    table=table.name, chain=chain.name, backend=backend,
                    kind=_kind(table.name, hook), policy=chain.policy or "ACCEPT",
                ))
    from journey.engine.netfilter.nft_eval import (  # (cycle: it imports us)
        native_base_chains,
        native_ruleset,
    )

    nr = native_ruleset(snap)
    handles = {(t.family, t.name): t.handle or 0 for t in nr.ruleset.tables} if nr else {}
    chains = [replace(c, handle=handles.get((c.nf_family, c.table), 0)) if c.backend == "nft"
              else c for c in chains]
    chains.extend(native_base_chains(snap))
    return Pipeline(tuple(chains), dumps)
