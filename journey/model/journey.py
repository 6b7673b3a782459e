"""A packet's journey through the kernel: Journey -> Stage -> (rule evaluations, details), Verdict.

Pure, immutable values returned by ``journey.engine``; rendered by ``journey.render`` (text,
JSON, Markdown, rich) and by the TUI. No I/O, no textual, no rich.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from journey.model.family import Family, IPAddress
from journey.model.packet import Packet
from journey.model.snapshot import ConntrackEntry


class StageKind(enum.StrEnum):
    """Closed set of stage kinds; each has its own context panel in the TUI."""

    NIC = "nic"  # netif_receive_skb: link up, MAC, VLAN
    TC = "tc"  # tc ingress / egress qdiscs and filters
    IP_CHECKS = "ip-checks"  # ip_rcv / ipv6_rcv header checks, martians
    NETFILTER = "netfilter"  # one base chain at one hook (an iptables table or an nft chain)
    CONNTRACK = "conntrack"  # nf_conntrack_in: lookup / new entry / state
    ROUTING = "routing"  # input or output routing decision (policy rules + FIB)
    FORWARD = "forward"  # ip_forward checks (forwarding enabled, TTL, MTU)
    REROUTE = "reroute"  # ip_route_me_harder after mangle/nat OUTPUT changes
    LOCAL_IN = "local-in"  # ip_local_deliver: transport demux
    SOCKET = "socket"  # socket lookup and the receiving / sending process
    NEIGHBOUR = "neighbour"  # neighbour resolution
    EGRESS = "egress"  # dev_queue_xmit: qdisc and transmit
    LOOPBACK = "loopback"  # locally generated packet delivered back through lo


class StageResult(enum.StrEnum):
    """The mark the stage rail shows."""

    PASSED = "passed"
    CHANGED = "changed"  # passed and changed the packet (NAT, mark, TTL, ...)
    DROPPED = "dropped"  # the packet ends here (dropped, rejected, not for us)
    DELIVERED = "delivered"  # handed to a socket / transmitted: the journey's happy end
    UNCERTAIN = "uncertain"  # the engine cannot model this exactly
    SKIPPED = "skipped"  # stage exists but does not apply (e.g. no rules, conntrack untracked)


class Disposition(enum.StrEnum):
    DELIVERED = "delivered"
    FORWARDED = "forwarded"
    SENT = "sent"
    DROPPED = "dropped"
    REJECTED = "rejected"
    UNCERTAIN = "uncertain"


@dataclass(frozen=True, slots=True)
class Change:
    """A field the stage changed, old -> new (as text, e.g. "dst", "192.0.2.10", "10.0.0.5")."""

    field: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class ConfigRef:
    """The exact configuration line behind a decision."""

    kind: str  # "iptables", "nft", "route", "rule", "sysctl", "neighbour", "socket", "interface"
    text: str  # the line as the tool prints it
    where: str = ""  # "filter/INPUT #3 (iptables-save line 12)", "table main", "net.ipv4.ip_forward"


@dataclass(frozen=True, slots=True)
class RuleEval:
    """One rule evaluated at a netfilter stage."""

    table: str
    chain: str
    index: int  # 1-based position in its chain (nft: position too; handle in ``handle``)
    text: str
    matched: bool
    target: str | None = None  # the verdict / target taken when matched
    failed_condition: str | None = None  # first condition that did not match, as text
    uncertain: bool = False
    note: str | None = None  # assumption made (limit, statistic, ...)
    counters: str | None = None  # "[pkts:bytes]" from the snapshot
    handle: int | None = None  # nft rule handle
    backend: str = "nft"  # "nft" (iptables-nft), "legacy", or "native" (nft ruleset)
    line: int | None = None


@dataclass(frozen=True, slots=True)
class RuleRef:
    """A rule that matched (for ``rules_hit``)."""

    table: str
    chain: str
    index: int
    backend: str = "nft"
    handle: int | None = None


@dataclass(frozen=True, slots=True)
class PolicyRuleEval:
    text: str
    matched: bool
    reason: str  # why it matched / did not, or what the lookup in its table found


@dataclass(frozen=True, slots=True)
class RouteCandidate:
    text: str
    table: int
    chosen: bool
    reason: str  # "longest prefix /24", "metric 100 > 50", "does not contain 10.1.2.3", ...


@dataclass(frozen=True, slots=True)
class RoutingDetail:
    """Context for a routing stage: the policy-rule walk and the candidate routes."""

    direction: str  # "input" | "output" | "reverse (rp_filter)"
    rules: tuple[PolicyRuleEval, ...] = ()
    candidates: tuple[RouteCandidate, ...] = ()
    table: int | None = None
    route: str | None = None  # the chosen route, as `ip route` prints it
    route_type: str | None = None
    nexthop: str | None = None
    source: str | None = None  # selected source address (output)
    oif: str | None = None


@dataclass(frozen=True, slots=True)
class ConntrackDetail:
    state: str  # NEW, ESTABLISHED, RELATED, INVALID, UNTRACKED
    direction: str | None = None  # original | reply
    orig: str | None = None  # "tcp 198.51.100.7:40000 -> 192.0.2.10:80"
    reply: str | None = None
    nat: str | None = None  # "DNAT to 10.0.0.5:8080"
    source: str | None = None  # "snapshot entry" | "created by packet 1 of this run" | "new"


@dataclass(frozen=True, slots=True)
class SocketCandidate:
    text: str  # "tcp LISTEN 0.0.0.0:22 users:(("sshd",pid=1,...))"
    chosen: bool
    reason: str


@dataclass(frozen=True, slots=True)
class SocketDetail:
    candidates: tuple[SocketCandidate, ...] = ()
    winner: str | None = None
    process: str | None = None
    pid: int | None = None


@dataclass(frozen=True, slots=True)
class NeighbourDetail:
    nexthop: str
    dev: str
    entry: str | None = None  # as `ip neigh` prints it, or None
    state: str | None = None
    lladdr: str | None = None


StageDetail = RoutingDetail | ConntrackDetail | SocketDetail | NeighbourDetail


@dataclass(frozen=True, slots=True)
class Stage:
    """One stage of the journey: what the kernel does here and what it decided.

    This is the unit ``walk()`` yields (the ``Step`` of the engine's interface).
    """

    name: str  # "PREROUTING mangle", "routing decision", "socket lookup", ...
    kind: StageKind
    result: StageResult
    summary: str  # plain-language: what the kernel does at this stage
    decision: str  # what it decided for this packet, with the reason
    packet: Packet  # the packet as it leaves this stage
    functions: tuple[str, ...] = ()  # kernel functions, e.g. ("ip_rcv", "ip_rcv_finish")
    hook: str | None = None  # prerouting, input, forward, output, postrouting, ingress
    table: str | None = None  # netfilter table / nft table
    family: str | None = None  # ip, ip6, inet, ...
    priority: int | None = None
    config: tuple[ConfigRef, ...] = ()
    changes: tuple[Change, ...] = ()
    rules: tuple[RuleEval, ...] = ()
    notes: tuple[str, ...] = ()
    uncertain: bool = False
    detail: StageDetail | None = None


Step = Stage


@dataclass(frozen=True, slots=True)
class SocketRef:
    proto: str
    addr: str
    port: int
    process: str | None = None
    pid: int | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """A packet the kernel itself generates in answer (RST, ICMP error, SYN-ACK)."""

    kind: str  # tcp-rst | icmp | icmpv6 | syn-ack | udp
    src: IPAddress
    dst: IPAddress
    type: int | None = None
    code: int | None = None
    packet: Packet | None = None  # the reply as a packet, to follow with `r`
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Verdict:
    disposition: Disposition
    code: str  # stable: filter-drop, reject, no-route, rp-filter, forwarding-disabled, ...
    reason: str  # a sentence a person understands
    stage: str  # name of the stage that decided
    hint: str | None = None
    egress: str | None = None
    socket: SocketRef | None = None
    packet: Packet | None = None  # final headers
    replies: tuple[Reply, ...] = ()
    uncertain: bool = False


@dataclass(frozen=True, slots=True)
class RunState:
    """State the engine carries from one packet of a run to the next, besides conntrack entries
    (both travel in ``Journey.flows``).

    ``kind`` ``limit`` / ``hashlimit``: how many packets of this run took credit from the token
    bucket named by ``key`` (one per ``-m limit`` rule, one per hashlimit table and hash key);
    ``tcp-syn-recv`` / ``tcp-established``: a TCP connection a local listener answered (SYN-ACK
    sent, request socket waiting for the ACK) or accepted during the run, ``key`` its 4-tuple.
    """

    kind: str
    key: str
    count: int = 0


Flow = ConntrackEntry | RunState


@dataclass(frozen=True, slots=True)
class Journey:
    """The whole path of one packet, from arrival to its fate."""

    packet: Packet
    spec: str  # the packet spec it came from ("" when crafted otherwise)
    stages: tuple[Stage, ...]
    verdict: Verdict
    conntrack: ConntrackDetail | None = None
    rules_hit: tuple[RuleRef, ...] = ()
    flows: tuple[Flow, ...] = ()  # conntrack entries and RunState of this run so far
    family: Family | None = None

    @property
    def uncertain(self) -> bool:
        return self.verdict.uncertain or any(s.uncertain for s in self.stages)
