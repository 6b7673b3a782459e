"""The host snapshot: a Linux host's whole network state as immutable values.

Pure data. This module does no I/O and imports neither textual, rich, scapy nor pyroute2.
Collectors (``journey.snapshot.collect``), importers and the file codec build these values;
the engine and the renderers only read them.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from journey.model.family import Family, IPAddress, IPNetwork
from journey.model.ruleset import IptablesDump

# Well-known routing table ids.
RT_TABLE_UNSPEC = 0
RT_TABLE_DEFAULT = 253
RT_TABLE_MAIN = 254
RT_TABLE_LOCAL = 255
TABLE_NAMES: Mapping[int, str] = {
    RT_TABLE_DEFAULT: "default",
    RT_TABLE_MAIN: "main",
    RT_TABLE_LOCAL: "local",
}


def table_name(table: int) -> str:
    """The name ``ip route`` prints for a table id (``main``, ``local``, or the number)."""
    return TABLE_NAMES.get(table, str(table))


class RouteType(enum.StrEnum):
    """rtm_type of a route (``ip route`` prints the same words)."""

    UNICAST = "unicast"
    LOCAL = "local"
    BROADCAST = "broadcast"
    ANYCAST = "anycast"
    MULTICAST = "multicast"
    BLACKHOLE = "blackhole"
    UNREACHABLE = "unreachable"
    PROHIBIT = "prohibit"
    THROW = "throw"
    NAT = "nat"
    XRESOLVE = "xresolve"


class RuleAction(enum.StrEnum):
    """fib rule action (FR_ACT_*)."""

    LOOKUP = "lookup"  # FR_ACT_TO_TBL
    GOTO = "goto"
    NOP = "nop"
    BLACKHOLE = "blackhole"
    UNREACHABLE = "unreachable"
    PROHIBIT = "prohibit"


class PartState(enum.StrEnum):
    COLLECTED = "collected"
    MISSING = "missing"
    PARTIAL = "partial"


@dataclass(frozen=True, slots=True)
class PartStatus:
    """Whether one part of the snapshot (``routes``, ``iptables``, ...) was collected, and why not."""

    name: str
    state: PartState
    reason: str | None = None
    source: str | None = None  # the command, file or netlink call it came from


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where and when a snapshot was taken, by whom, and what it holds."""

    hostname: str
    kernel: str
    time: str  # ISO 8601, UTC
    journey_version: str
    uid: int | None
    netns: str | None  # None: the namespace journey ran in (usually the host's)
    origin: str  # "live", "from-dir", "sosreport"
    parts: tuple[PartStatus, ...] = ()

    def part(self, name: str) -> PartStatus | None:
        for p in self.parts:
            if p.name == name:
                return p
        return None

    def missing(self) -> tuple[PartStatus, ...]:
        return tuple(p for p in self.parts if p.state is not PartState.COLLECTED)


@dataclass(frozen=True, slots=True)
class Interface:
    """A network interface (link)."""

    index: int
    name: str
    kind: str | None = None  # veth, bridge, vlan, macvlan, None for physical / loopback
    mac: str | None = None
    mtu: int = 1500
    flags: tuple[str, ...] = ()  # UP, BROADCAST, LOOPBACK, NOARP, PROMISC, LOWER_UP, ...
    operstate: str = "UNKNOWN"  # UP, DOWN, UNKNOWN, LOWERLAYERDOWN, ...
    master: str | None = None  # bridge / bond name
    link: str | None = None  # parent (vlan, macvlan) or None
    vlan_id: int | None = None
    xdp: str | None = None  # "prog id N (mode)" when an XDP program is attached
    group: int = 0

    @property
    def is_up(self) -> bool:
        return "UP" in self.flags

    @property
    def is_loopback(self) -> bool:
        return "LOOPBACK" in self.flags


@dataclass(frozen=True, slots=True)
class Address:
    """An address assigned to an interface."""

    ifindex: int
    ifname: str
    address: IPAddress
    prefixlen: int
    scope: str = "global"  # global, link, host, site
    flags: tuple[str, ...] = ()  # permanent, secondary, tentative, deprecated, noprefixroute, ...
    broadcast: IPAddress | None = None
    label: str | None = None

    @property
    def family(self) -> Family:
        return Family.of(self.address)

    @property
    def network(self) -> IPNetwork:
        return ipaddress.ip_network(f"{self.address}/{self.prefixlen}", strict=False)


@dataclass(frozen=True, slots=True)
class Nexthop:
    """One nexthop of a multipath route."""

    gateway: IPAddress | None
    dev: str | None
    weight: int = 1
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Route:
    """A route of any table and family."""

    family: Family
    table: int
    dst: IPNetwork
    type: RouteType = RouteType.UNICAST
    gateway: IPAddress | None = None
    dev: str | None = None
    prefsrc: IPAddress | None = None
    metric: int = 0
    scope: str = "universe"  # universe, link, host, site, nowhere
    protocol: str = "boot"  # kernel, boot, static, dhcp, ra, ...
    tos: int = 0
    mtu: int | None = None
    nexthops: tuple[Nexthop, ...] = ()
    flags: tuple[str, ...] = ()  # onlink, linkdown, ...

    def text(self) -> str:
        """The route as ``ip route show table all`` prints it."""
        parts: list[str] = []
        if self.type is not RouteType.UNICAST:
            parts.append(str(self.type))
        default = "::/0" if self.family is Family.IPV6 else "0.0.0.0/0"
        dst = str(self.dst)
        if dst == default:
            dst = "default"
        elif self.dst.prefixlen == self.dst.max_prefixlen:
            dst = str(self.dst.network_address)
        parts.append(dst)
        if self.gateway is not None:
            parts += ["via", str(self.gateway)]
        if self.dev:
            parts += ["dev", self.dev]
        if self.table != RT_TABLE_MAIN:
            parts += ["table", table_name(self.table)]
        if self.protocol not in ("boot", ""):
            parts += ["proto", self.protocol]
        if self.scope != "universe":
            parts += ["scope", self.scope]
        if self.prefsrc is not None:
            parts += ["src", str(self.prefsrc)]
        if self.metric:
            parts += ["metric", str(self.metric)]
        if self.mtu:
            parts += ["mtu", str(self.mtu)]
        for f in self.flags:
            parts.append(f)
        for nh in self.nexthops:
            parts.append("nexthop")
            if nh.gateway is not None:
                parts += ["via", str(nh.gateway)]
            if nh.dev:
                parts += ["dev", nh.dev]
            parts += ["weight", str(nh.weight)]
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class PortRange:
    start: int
    end: int

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.start <= port <= self.end

    def text(self) -> str:
        return str(self.start) if self.start == self.end else f"{self.start}-{self.end}"


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """A routing policy rule (``ip rule``)."""

    family: Family
    priority: int
    action: RuleAction = RuleAction.LOOKUP
    table: int | None = None
    invert: bool = False  # "not"
    src: IPNetwork | None = None
    dst: IPNetwork | None = None
    iif: str | None = None
    oif: str | None = None
    fwmark: int | None = None
    fwmask: int | None = None
    tos: int = 0  # tos / dsfield
    ipproto: int | None = None
    sport: PortRange | None = None
    dport: PortRange | None = None
    uidrange: PortRange | None = None
    goto: int | None = None
    suppress_prefixlength: int | None = None
    suppress_ifgroup: int | None = None
    l3mdev: bool = False
    protocol: str | None = None

    def text(self) -> str:
        """The rule as ``ip rule`` prints it, priority first."""
        parts = [f"{self.priority}:"]
        if self.invert:
            parts.append("not")
        parts += ["from", str(self.src) if self.src is not None else "all"]
        if self.dst is not None:
            parts += ["to", str(self.dst)]
        if self.tos:
            parts += ["tos", hex(self.tos)]
        if self.fwmark is not None:
            mark = hex(self.fwmark)
            if self.fwmask is not None and self.fwmask != 0xFFFFFFFF:
                mark += f"/{self.fwmask:#x}"
            parts += ["fwmark", mark]
        if self.iif:
            parts += ["iif", self.iif]
        if self.oif:
            parts += ["oif", self.oif]
        if self.uidrange is not None:
            parts += ["uidrange", f"{self.uidrange.start}-{self.uidrange.end}"]
        if self.ipproto is not None:
            parts += ["ipproto", str(self.ipproto)]
        if self.sport is not None:
            parts += ["sport", self.sport.text()]
        if self.dport is not None:
            parts += ["dport", self.dport.text()]
        if self.l3mdev:
            parts.append("lookup [l3mdev-table]")
        elif self.action is RuleAction.LOOKUP:
            parts += ["lookup", table_name(self.table or 0)]
        elif self.action is RuleAction.GOTO:
            parts += ["goto", str(self.goto)]
        else:
            parts.append(str(self.action))
        if self.suppress_prefixlength is not None:
            parts += ["suppress_prefixlength", str(self.suppress_prefixlength)]
        if self.suppress_ifgroup is not None:
            parts += ["suppress_ifgroup", str(self.suppress_ifgroup)]
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Neighbour:
    """A neighbour (ARP / NDP) entry."""

    family: Family
    address: IPAddress
    ifname: str
    lladdr: str | None = None
    state: tuple[str, ...] = ()  # REACHABLE, STALE, DELAY, PROBE, FAILED, INCOMPLETE, NOARP, PERMANENT
    router: bool = False


@dataclass(frozen=True, slots=True)
class Process:
    pid: int
    name: str


@dataclass(frozen=True, slots=True)
class Socket:
    """A TCP or UDP socket (inet_diag / ``ss``)."""

    proto: str  # "tcp" | "udp"
    family: Family
    state: str  # as ss prints it: LISTEN, ESTAB, UNCONN, SYN-SENT, TIME-WAIT, ...
    local: IPAddress
    local_port: int
    remote: IPAddress | None = None
    remote_port: int | None = None
    bound_dev: str | None = None
    v6only: bool | None = None
    uid: int | None = None
    inode: int | None = None
    mark: int | None = None
    processes: tuple[Process, ...] = ()


@dataclass(frozen=True, slots=True)
class CtTuple:
    """One direction of a conntrack entry."""

    src: IPAddress
    dst: IPAddress
    sport: int | None = None
    dport: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    icmp_id: int | None = None


@dataclass(frozen=True, slots=True)
class ConntrackEntry:
    """A connection tracking entry (``conntrack -L -o extended``)."""

    family: Family
    proto: int  # l4 protocol number
    orig: CtTuple
    reply: CtTuple
    status: tuple[str, ...] = ()  # ASSURED, SEEN_REPLY, CONFIRMED, SRC_NAT, DST_NAT, UNREPLIED, ...
    tcp_state: str | None = None  # ESTABLISHED, SYN_SENT, ...
    mark: int = 0
    zone: int = 0
    timeout: int | None = None


@dataclass(frozen=True, slots=True)
class RawDump:
    """The verbatim output of one tool, kept so newer parsers can re-read it."""

    name: str  # e.g. "iptables-save", "nft -j list ruleset", "tc -j qdisc show"
    text: str
    source: str  # the command line or file it came from


@dataclass(frozen=True, slots=True)
class IpSet:
    """An ipset (``ipset save``): name, type and members as written."""

    name: str
    type: str  # hash:ip, hash:net, hash:ip,port, bitmap:port, list:set, ...
    family: Family | None
    members: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class HostSnapshot:
    """Everything journey knows about one host's network state."""

    provenance: Provenance
    interfaces: tuple[Interface, ...] = ()
    addresses: tuple[Address, ...] = ()
    routes: tuple[Route, ...] = ()
    rules: tuple[PolicyRule, ...] = ()
    neighbours: tuple[Neighbour, ...] = ()
    sockets: tuple[Socket, ...] = ()
    conntrack: tuple[ConntrackEntry, ...] = ()
    sysctls: Mapping[str, str] = field(default_factory=dict)  # "net.ipv4.ip_forward" -> "1"
    ipsets: tuple[IpSet, ...] = ()
    iptables: tuple[IptablesDump, ...] = ()  # v4/v6 x nft/legacy, parsed from the raw dumps
    raw: tuple[RawDump, ...] = ()  # nft -j, tc -j, ipset save, iptables-save texts, ...

    # -- lookups used by the engine and renderers -------------------------------------------
    def interface(self, name: str) -> Interface | None:
        for i in self.interfaces:
            if i.name == name:
                return i
        return None

    def interface_by_index(self, index: int) -> Interface | None:
        for i in self.interfaces:
            if i.index == index:
                return i
        return None

    def addresses_of(self, ifname: str, family: Family | None = None) -> tuple[Address, ...]:
        return tuple(
            a
            for a in self.addresses
            if a.ifname == ifname and (family is None or a.family is family)
        )

    def sysctl(self, key: str, default: str | None = None) -> str | None:
        return self.sysctls.get(key, default)

    def raw_dump(self, name: str) -> RawDump | None:
        for r in self.raw:
            if r.name == name:
                return r
        return None

    def ipset(self, name: str) -> IpSet | None:
        for s in self.ipsets:
            if s.name == name:
                return s
        return None
