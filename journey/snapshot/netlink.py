"""pyroute2 adapter: read links, addresses, routes, rules, neighbours, sockets and conntrack.

Turns pyroute2 0.9.x netlink messages into ``journey.model.snapshot`` values. pyroute2 is imported
lazily inside the readers (it costs ~0.2 s). Every reader works on the network namespace of the
*calling thread*: the collector enters a namespace with ``setns()`` in a worker thread and calls
these readers there (see ``journey.snapshot.collect``), so no reader takes a ``netns`` argument.

Read-only: only dump requests are sent. Must not depend on textual or rich.

Name tables follow what iproute2 prints (``ip link``, ``ip route``, ``ip rule``, ``ss``,
``conntrack -L``) so the snapshot reads like the tools' output.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from journey.model.family import Family, IPAddress, IPNetwork
from journey.model.snapshot import (
    Address,
    ConntrackEntry,
    CtTuple,
    Interface,
    Neighbour,
    Nexthop,
    PolicyRule,
    PortRange,
    Process,
    Route,
    RouteType,
    RuleAction,
    Socket,
)

Msg = Any  # a pyroute2 netlink message (nlmsg): dict-like with .get()

# --- name tables --------------------------------------------------------------------------------

# IFF_* in the order `ip link` prints them
IFF_FLAGS: tuple[tuple[int, str], ...] = (
    (0x8, "LOOPBACK"),
    (0x2, "BROADCAST"),
    (0x10, "POINTOPOINT"),
    (0x1000, "MULTICAST"),
    (0x80, "NOARP"),
    (0x200, "ALLMULTI"),
    (0x100, "PROMISC"),
    (0x400, "MASTER"),
    (0x800, "SLAVE"),
    (0x4, "DEBUG"),
    (0x8000, "DYNAMIC"),
    (0x4000, "AUTOMEDIA"),
    (0x2000, "PORTSEL"),
    (0x20, "NOTRAILERS"),
    (0x1, "UP"),
    (0x10000, "LOWER_UP"),
    (0x20000, "DORMANT"),
    (0x40000, "ECHO"),
)

# IFA_F_* as `ip addr` prints them
IFA_FLAGS: tuple[tuple[int, str], ...] = (
    (0x01, "secondary"),
    (0x02, "nodad"),
    (0x04, "optimistic"),
    (0x08, "dadfailed"),
    (0x10, "home"),
    (0x20, "deprecated"),
    (0x40, "tentative"),
    (0x80, "permanent"),
    (0x100, "mngtmpaddr"),
    (0x200, "noprefixroute"),
    (0x400, "autojoin"),
    (0x800, "stable-privacy"),
)

# rtm_scope / ifa_scope
SCOPES: Mapping[int, str] = {0: "universe", 200: "site", 253: "link", 254: "host", 255: "nowhere"}
ADDR_SCOPES: Mapping[int, str] = {0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere"}

# rtm_protocol (/etc/iproute2/rt_protos and rt_protos.d)
PROTOCOLS: Mapping[int, str] = {
    0: "unspec", 1: "redirect", 2: "kernel", 3: "boot", 4: "static", 8: "gated", 9: "ra",
    10: "mrt", 11: "zebra", 12: "bird", 13: "dnrouted", 14: "xorp", 15: "ntk", 16: "dhcp",
    17: "mrouted", 18: "keepalived", 42: "babel", 99: "openr", 186: "bgp", 187: "isis",
    188: "ospf", 189: "rip", 192: "eigrp",
}

ROUTE_TYPES: Mapping[int, RouteType] = {
    1: RouteType.UNICAST, 2: RouteType.LOCAL, 3: RouteType.BROADCAST, 4: RouteType.ANYCAST,
    5: RouteType.MULTICAST, 6: RouteType.BLACKHOLE, 7: RouteType.UNREACHABLE,
    8: RouteType.PROHIBIT, 9: RouteType.THROW, 10: RouteType.NAT, 11: RouteType.XRESOLVE,
}

# RTNH_F_* (route and nexthop flags), as `ip route` prints them
RTNH_FLAGS: tuple[tuple[int, str], ...] = (
    (0x1, "dead"), (0x2, "pervasive"), (0x4, "onlink"), (0x8, "offload"), (0x10, "linkdown"),
    (0x20, "unresolved"), (0x40, "trap"),
)

# FR_ACT_*
RULE_ACTIONS: Mapping[int, RuleAction] = {
    1: RuleAction.LOOKUP, 2: RuleAction.GOTO, 3: RuleAction.NOP, 6: RuleAction.BLACKHOLE,
    7: RuleAction.UNREACHABLE, 8: RuleAction.PROHIBIT,
}
FIB_RULE_INVERT = 0x2
UNSET_U32 = (0xFFFFFFFF, -1)

# NUD_* as `ip neigh` prints them
NUD_STATES: tuple[tuple[int, str], ...] = (
    (0x01, "INCOMPLETE"), (0x02, "REACHABLE"), (0x04, "STALE"), (0x08, "DELAY"), (0x10, "PROBE"),
    (0x20, "FAILED"), (0x40, "NOARP"), (0x80, "PERMANENT"),
)
NTF_ROUTER = 0x80

# TCP states as `ss` prints them (include/net/tcp_states.h order). UDP uses ESTAB (connected)
# and UNCONN (TCP_CLOSE). The names are ss's, not the kernel's: ESTAB, not ESTABLISHED.
SS_STATES: Mapping[int, str] = {
    1: "ESTAB", 2: "SYN-SENT", 3: "SYN-RECV", 4: "FIN-WAIT-1", 5: "FIN-WAIT-2", 6: "TIME-WAIT",
    7: "UNCONN", 8: "CLOSE-WAIT", 9: "LAST-ACK", 10: "LISTEN", 11: "CLOSING", 12: "NEW-SYN-RECV",
}

# IPS_* conntrack status bits, in the kernel's bit order
CT_STATUS: tuple[tuple[int, str], ...] = (
    (1 << 0, "EXPECTED"), (1 << 1, "SEEN_REPLY"), (1 << 2, "ASSURED"), (1 << 3, "CONFIRMED"),
    (1 << 4, "SRC_NAT"), (1 << 5, "DST_NAT"), (1 << 6, "SEQ_ADJUST"), (1 << 7, "SRC_NAT_DONE"),
    (1 << 8, "DST_NAT_DONE"), (1 << 9, "DYING"), (1 << 10, "FIXED_TIMEOUT"),
    (1 << 11, "TEMPLATE"), (1 << 12, "UNTRACKED"), (1 << 13, "HELPER"), (1 << 14, "OFFLOAD"),
    (1 << 15, "HW_OFFLOAD"),
)

XDP_MODES: Mapping[str, str] = {
    "xdp": "driver", "xdpgeneric": "generic", "xdpoffload": "offload", "xdpmulti": "multi",
}

RTA_NH_ID = 30  # unknown to pyroute2 0.9.7's rtmsg: shows up as an 'UNKNOWN' attribute


def bits(value: int, table: Iterable[tuple[int, str]]) -> tuple[str, ...]:
    """The names of the bits set in ``value``."""
    return tuple(name for bit, name in table if value & bit)


def port_range(text: object) -> PortRange | None:
    """``'1000:2000'`` (pyroute2's FRA_*_RANGE / FRA_UID_RANGE rendering) -> PortRange."""
    if text is None:
        return None
    if isinstance(text, str):
        a, _, b = text.partition(":")
        return PortRange(int(a), int(b or a))
    if isinstance(text, Mapping):
        return PortRange(int(text["start"]), int(text["end"]))
    raise ValueError(f"unexpected range {text!r}")


def _prefix(addr: object, length: int, family: Family) -> IPNetwork:
    if addr is None:
        addr = "0.0.0.0" if family is Family.IPV4 else "::"
    return ipaddress.ip_network(f"{addr}/{length}", strict=False)


def _family(af: int) -> Family | None:
    return Family.IPV4 if af == socket.AF_INET else Family.IPV6 if af == socket.AF_INET6 else None


def _addr(text: object) -> IPAddress | None:
    if text is None or text == "":
        return None
    return ipaddress.ip_address(str(text))


def _has_unknown_attr(msg: Msg, nla_type: int) -> bool:
    for name, value in msg.get("attrs", ()):
        if name == "UNKNOWN" and isinstance(value, Mapping):
            header = value.get("header") or {}
            if header.get("type") == nla_type:
                return True
    return False


# --- rtnetlink ----------------------------------------------------------------------------------


@dataclass(slots=True)
class RtnlState:
    """Everything read over rtnetlink, with notes about what could not be represented."""

    interfaces: list[Interface] = field(default_factory=list)
    addresses: list[Address] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    rules: list[PolicyRule] = field(default_factory=list)
    neighbours: list[Neighbour] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=dict)  # part name -> problems

    def note(self, part: str, text: str) -> None:
        self.notes.setdefault(part, []).append(text)


def read_rtnl() -> RtnlState:
    """Dump links, addresses, routes (all tables, both families), rules and neighbours."""
    from pyroute2 import IPRoute

    state = RtnlState()
    with IPRoute() as ipr:
        links = ipr.get_links()
        names: dict[int, str] = {int(link["index"]): str(link.get("ifname")) for link in links}
        for link in links:
            state.interfaces.append(convert_link(link, names))
        for a in ipr.get_addr():
            addr = convert_address(a, names)
            if addr is not None:
                state.addresses.append(addr)
        for af in (socket.AF_INET, socket.AF_INET6):
            for r in ipr.get_routes(family=af):
                try:
                    route = convert_route(r, names)
                except ValueError as e:
                    state.note("routes", str(e))
                    continue
                if route is not None:
                    state.routes.append(route)
                    if _has_unknown_attr(r, RTA_NH_ID) and route.gateway is None \
                            and route.dev is None and not route.nexthops:
                        state.note("routes", f"route {route.text()} uses a nexthop object (nhid):"
                                             " its gateway/device were not read")
        for af in (socket.AF_INET, socket.AF_INET6):
            for ru in ipr.get_rules(family=af):
                try:
                    rule = convert_rule(ru)
                except ValueError as e:
                    state.note("rules", str(e))
                    continue
                if rule is not None:
                    state.rules.append(rule)
        for n in ipr.get_neighbours():
            neigh = convert_neighbour(n, names)
            if neigh is not None:
                state.neighbours.append(neigh)
    state.routes.sort(key=lambda r: (r.family.version, r.table, r.dst.prefixlen, int(r.dst.network_address), r.metric))
    state.rules.sort(key=lambda r: (r.family.version, r.priority))
    return state


def convert_link(link: Msg, names: Mapping[int, str]) -> Interface:
    index = int(link["index"])
    kind = link.get(("linkinfo", "kind"))
    master = link.get("master")
    parent = link.get("link")
    parent_name: str | None = None
    # IFLA_LINK in another namespace (veth peer moved away) is an index there: not resolvable
    if parent and int(parent) != index and link.get("link_netnsid") is None:
        parent_name = names.get(int(parent))
    vlan_id = None
    if kind == "vlan":
        vid = link.get(("linkinfo", "data", "vlan_id"))
        vlan_id = int(vid) if vid is not None else None
    xdp: str | None = None
    mode = link.get(("xdp", "xdp_attached"))
    if mode:
        prog = link.get(("xdp", "xdp_prog_id"))
        xdp = f"prog id {prog} ({XDP_MODES.get(str(mode), str(mode))})"
    return Interface(
        index=index,
        name=str(link.get("ifname")),
        kind=str(kind) if kind else None,
        mac=link.get("address"),
        mtu=int(link.get("mtu") or 0),
        flags=bits(int(link["flags"]), IFF_FLAGS),
        operstate=str(link.get("operstate") or "UNKNOWN"),
        master=names.get(int(master)) if master else None,
        link=parent_name,
        vlan_id=vlan_id,
        xdp=xdp,
        group=int(link.get("group") or 0),
    )


def convert_address(a: Msg, names: Mapping[int, str]) -> Address | None:
    if _family(int(a["family"])) is None:
        return None
    # IFA_LOCAL is the local address (IFA_ADDRESS is the peer on point-to-point links)
    local = _addr(a.get("local")) or _addr(a.get("address"))
    if local is None:
        return None
    flags = a.get("flags")  # IFA_FLAGS (32 bit) when present, else the 8-bit header field
    index = int(a["index"])
    return Address(
        ifindex=index,
        ifname=names.get(index, f"if{index}"),
        address=local,
        prefixlen=int(a["prefixlen"]),
        scope=ADDR_SCOPES.get(int(a["scope"]), str(a["scope"])),
        flags=bits(int(flags or 0), IFA_FLAGS),
        broadcast=_addr(a.get("broadcast")),
        label=a.get("label"),
    )


def convert_route(r: Msg, names: Mapping[int, str]) -> Route | None:
    family = _family(int(r["family"]))
    if family is None:
        return None
    rtype = ROUTE_TYPES.get(int(r["type"]))
    if rtype is None:
        raise ValueError(f"route of unknown type {r['type']} to {r.get('dst')} skipped")
    table = r.get("table")  # RTA_TABLE: the header field is 8 bits (252 for tables > 255)
    gateway = _addr(r.get("gateway"))
    via = r.get("via")
    if gateway is None and isinstance(via, Mapping) and via.get("addr"):
        gateway = _addr(via["addr"])
    oif = r.get("oif")
    mtu = r.get(("metrics", "mtu"))
    nexthops: list[Nexthop] = []
    for nh in r.get("multipath") or ():
        nh_gw = _addr(nh.get("gateway"))
        nh_via = nh.get("via")
        if nh_gw is None and isinstance(nh_via, Mapping) and nh_via.get("addr"):
            nh_gw = _addr(nh_via["addr"])
        nh_oif = nh.get("oif")
        nexthops.append(Nexthop(
            gateway=nh_gw,
            dev=names.get(int(nh_oif)) if nh_oif else None,
            weight=int(nh.get("hops") or 0) + 1,
            flags=bits(int(nh.get("flags") or 0), RTNH_FLAGS),
        ))
    proto = int(r["proto"])
    return Route(
        family=family,
        table=int(table if table is not None else r["table"]),
        dst=_prefix(r.get("dst"), int(r["dst_len"]), family),
        type=rtype,
        gateway=gateway,
        dev=names.get(int(oif), f"if{oif}") if oif else None,
        prefsrc=_addr(r.get("prefsrc")),
        metric=int(r.get("priority") or 0),
        scope=SCOPES.get(int(r["scope"]), str(r["scope"])),
        protocol=PROTOCOLS.get(proto, str(proto)),
        tos=int(r.get("tos") or 0),
        mtu=int(mtu) if mtu else None,
        nexthops=tuple(nexthops),
        flags=bits(int(r["flags"]) & 0xFF, RTNH_FLAGS),
    )


def _u32_opt(value: object) -> int | None:
    if value is None:
        return None
    v = int(str(value))
    return None if v in UNSET_U32 else v


def convert_rule(ru: Msg) -> PolicyRule | None:
    family = _family(int(ru["family"]))
    if family is None:
        return None
    action = RULE_ACTIONS.get(int(ru["action"]))
    if action is None:
        raise ValueError(f"rule {ru.get('priority')} with unknown action {ru['action']} skipped")
    table = ru.get("table")  # FRA_TABLE (tables > 255)
    if table is None:
        table = ru["table"]
    src = ru.get("src")
    dst = ru.get("dst")
    proto = ru.get("protocol")
    fwmark = ru.get("fwmark")
    fwmask = ru.get("fwmask")
    goto = ru.get("goto")
    ip_proto = ru.get("ip_proto")
    return PolicyRule(
        family=family,
        priority=int(ru.get("priority") or 0),  # FRA_PRIORITY absent for the priority-0 rule
        action=action,
        table=int(table) if action is RuleAction.LOOKUP else None,
        invert=bool(int(ru["flags"]) & FIB_RULE_INVERT),
        src=_prefix(src, int(ru["src_len"]), family) if src is not None else None,
        dst=_prefix(dst, int(ru["dst_len"]), family) if dst is not None else None,
        iif=ru.get("iifname"),
        oif=ru.get("oifname"),
        fwmark=int(fwmark) if fwmark is not None else None,
        fwmask=int(fwmask) if fwmask is not None else (0xFFFFFFFF if fwmark is not None else None),
        tos=int(ru["tos"]),
        ipproto=int(ip_proto) if ip_proto is not None else None,
        sport=port_range(ru.get("sport_range")),
        dport=port_range(ru.get("dport_range")),
        uidrange=port_range(ru.get("uid_range")),
        goto=int(goto) if goto is not None else None,
        suppress_prefixlength=_u32_opt(ru.get("suppress_prefixlen")),
        suppress_ifgroup=_u32_opt(ru.get("suppress_ifgroup")),
        l3mdev=bool(ru.get("l3mdev")),
        protocol=PROTOCOLS.get(int(proto), str(proto)) if proto else None,  # ip rule: no "proto unspec"
    )


def convert_neighbour(n: Msg, names: Mapping[int, str]) -> Neighbour | None:
    family = _family(int(n["family"]))
    dst = _addr(n.get("dst"))
    if family is None or dst is None:
        return None  # bridge fdb entries and the like
    state = int(n["state"])
    index = int(n["ifindex"])
    return Neighbour(
        family=family,
        address=dst,
        ifname=names.get(index, f"if{index}"),
        lladdr=n.get("lladdr"),
        state=bits(state, NUD_STATES) if state else ("NONE",),
        router=bool(int(n["flags"]) & NTF_ROUTER),
    )


# --- inet_diag ----------------------------------------------------------------------------------


def read_sockets(names: Mapping[int, str] | None = None) -> list[Socket]:
    """TCP and UDP sockets of both families (all states), like ``ss -tuan``; no processes yet."""
    from pyroute2 import DiagSocket
    from pyroute2.netlink.diag import SS_ALL

    if names is None:
        names = _link_names()
    out: list[Socket] = []
    with DiagSocket() as ds:
        ds.bind()
        for af in (socket.AF_INET, socket.AF_INET6):
            for proto, pname in ((socket.IPPROTO_TCP, "tcp"), (socket.IPPROTO_UDP, "udp")):
                # get_sock_stats is marked work-in-progress upstream: its use stays in this module
                for m in ds.get_sock_stats(family=af, protocol=proto, states=SS_ALL):
                    out.append(convert_socket(m, pname, names))
    return out


def _link_names() -> dict[int, str]:
    return {idx: name for idx, name in socket.if_nameindex()}


def convert_socket(m: Msg, proto: str, names: Mapping[int, str]) -> Socket:
    family = _family(int(m["idiag_family"])) or Family.IPV4
    state = int(m["idiag_state"])
    local = ipaddress.ip_address(m["idiag_src"])
    remote = ipaddress.ip_address(m["idiag_dst"])
    rport = int(m["idiag_dport"])
    connected = rport != 0 or not remote.is_unspecified
    v6only = m.get("INET_DIAG_SKV6ONLY")
    mark_hex = m.get("INET_DIAG_MARK")  # 'hh:hh:hh:hh', the u32 in host byte order
    mark: int | None = None
    if isinstance(mark_hex, str) and mark_hex:
        mark = int.from_bytes(bytes.fromhex(mark_hex.replace(":", "")), sys.byteorder)
    ifindex = int(m["idiag_if"])
    inode = int(m["idiag_inode"])
    return Socket(
        proto=proto,
        family=family,
        state=SS_STATES.get(state, f"UNKNOWN-{state}"),
        local=local,
        local_port=int(m["idiag_sport"]),
        remote=remote if connected else None,
        remote_port=rport if connected else None,
        bound_dev=names.get(ifindex, f"if{ifindex}") if ifindex else None,
        v6only=bool(v6only) if v6only is not None and family is Family.IPV6 else None,
        uid=int(m["idiag_uid"]),
        inode=inode or None,
        mark=mark,
    )


@dataclass(slots=True)
class ProcScan:
    """socket inode -> owning processes, from ``/proc/*/fd`` (what ``ss -p`` does)."""

    owners: dict[int, list[Process]] = field(default_factory=dict)
    denied: int = 0  # processes whose fd table could not be read (other users, without root)


def scan_socket_owners(proc: str = "/proc") -> ProcScan:
    """Map every socket inode to the processes holding it. Socket inodes are global, so this
    also finds the owners of sockets in other network namespaces."""
    scan = ProcScan()
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return scan
    for pid in pids:
        fd_dir = f"{proc}/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except PermissionError:
            scan.denied += 1
            continue
        except OSError:
            continue  # the process exited
        comm: str | None = None
        seen: set[int] = set()
        for fd in fds:
            try:
                target = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if not target.startswith("socket:["):
                continue
            inode = int(target[8:-1])
            if inode in seen:
                continue
            seen.add(inode)
            if comm is None:
                try:
                    with open(f"{proc}/{pid}/comm", encoding="utf-8", errors="replace") as f:
                        comm = f.read().rstrip("\n")
                except OSError:
                    comm = "?"
            scan.owners.setdefault(inode, []).append(Process(pid=int(pid), name=comm))
    return scan


# --- conntrack ----------------------------------------------------------------------------------


def read_conntrack() -> list[ConntrackEntry]:
    """All conntrack entries of both families (``conntrack -L``). Needs CAP_NET_ADMIN."""
    from pyroute2 import Conntrack

    out: list[ConntrackEntry] = []
    for af, family in ((socket.AF_INET, Family.IPV4), (socket.AF_INET6, Family.IPV6)):
        with Conntrack(nfgen_family=af) as ct:
            for e in ct.dump_entries():
                entry = convert_ct(e, family)
                if entry is not None:
                    out.append(entry)
    return out


def _ct_tuple(t: Any) -> CtTuple | None:
    src, dst = _addr(t.saddr), _addr(t.daddr)
    if src is None or dst is None:
        return None
    return CtTuple(
        src=src,
        dst=dst,
        sport=t.sport,
        dport=t.dport,
        icmp_type=t.icmp_type,
        icmp_code=t.icmp_code,
        icmp_id=t.icmp_id,
    )


def convert_ct(e: Any, family: Family) -> ConntrackEntry | None:
    orig, reply = _ct_tuple(e.tuple_orig), _ct_tuple(e.tuple_reply)
    if orig is None or reply is None:
        return None
    tcp_state = e.protoinfo.state_name() if e.protoinfo is not None else None
    return ConntrackEntry(
        family=family,
        proto=int(e.tuple_orig.proto or 0),
        orig=orig,
        reply=reply,
        status=bits(int(e.status or 0), CT_STATUS),
        tcp_state=tcp_state,
        mark=int(e.mark or 0),
        zone=int(e.zone or 0),
        timeout=int(e.timeout) if e.timeout is not None else None,
    )


def names_of(interfaces: Iterable[Interface]) -> dict[int, str]:
    return {i.index: i.name for i in interfaces}

