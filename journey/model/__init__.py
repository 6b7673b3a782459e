"""Pure values shared by every layer: the host snapshot, parsed rulesets, packets, journeys.

Must not depend on textual, rich, scapy or pyroute2, and does no I/O.
"""

from journey.model.family import Family, IPAddress, IPNetwork
from journey.model.packet import Packet, Proto, proto_name
from journey.model.ruleset import (
    Backend,
    Chain,
    Counters,
    IptablesDump,
    JumpKind,
    Match,
    MatchOption,
    Rule,
    Table,
    Target,
)
from journey.model.snapshot import (
    Address,
    ConntrackEntry,
    CtTuple,
    HostSnapshot,
    Interface,
    IpSet,
    Neighbour,
    Nexthop,
    PartState,
    PartStatus,
    PolicyRule,
    PortRange,
    Process,
    Provenance,
    RawDump,
    Route,
    RouteType,
    RuleAction,
    Socket,
)

__all__ = [
    "Address", "Backend", "Chain", "ConntrackEntry", "Counters", "CtTuple", "Family",
    "HostSnapshot", "IPAddress", "IPNetwork", "Interface", "IpSet", "IptablesDump", "JumpKind",
    "Match", "MatchOption", "Neighbour", "Nexthop", "Packet", "PartState", "PartStatus",
    "PolicyRule", "PortRange", "Process", "Proto", "Provenance", "RawDump", "Route",
    "RouteType", "Rule", "RuleAction", "Socket", "Table", "Target", "proto_name",
]
