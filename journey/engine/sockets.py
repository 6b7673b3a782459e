"""Socket lookup for a locally delivered packet: which TCP/UDP socket (and process) receives it.

Models ``__inet_lookup_skb`` / ``__inet6_lookup_skb`` (TCP: established 4-tuple first, then
listeners) and ``__udp4_lib_lookup`` / ``__udp6_lib_lookup`` (connected sockets score higher
than merely bound ones). In both, sockets bound to the packet's exact destination address are
tried before wildcard (0.0.0.0 / ::) ones; an IPv4 packet reaches a ``::`` socket through a
v4-mapped address unless the socket is IPV6_V6ONLY; a socket bound to a device
(SO_BINDTODEVICE) only sees packets that arrived on that device (or its VRF master).

Pure: reads a HostSnapshot, returns values; no I/O, no rich, no textual.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from journey.model.family import Family, IPAddress
from journey.model.journey import SocketCandidate, SocketDetail, SocketRef
from journey.model.packet import Packet
from journey.model.snapshot import HostSnapshot, Socket

CLOSED_STATES = frozenset({"LISTEN", "UNCONN", "CLOSE", "CLOSED"})


@dataclass(frozen=True, slots=True)
class SocketMatch:
    """The result of a socket lookup."""

    socket: Socket | None
    how: str  # "established", "listener", "connected", "bound", "" (none)
    detail: SocketDetail
    notes: tuple[str, ...] = ()
    uncertain: bool = False

    @property
    def ref(self) -> SocketRef | None:
        if self.socket is None:
            return None
        return socket_ref(self.socket)


def socket_ref(s: Socket) -> SocketRef:
    proc = s.processes[0] if s.processes else None
    return SocketRef(proto=s.proto, addr=str(s.local), port=s.local_port,
                     process=proc.name if proc else None, pid=proc.pid if proc else None)


def socket_text(s: Socket) -> str:
    """The socket the way ``ss -tulpn`` prints it."""
    def ep(a: IPAddress | None, p: int | None) -> str:
        if a is None:
            return "*:*"
        text = f"[{a}]" if a.version == 6 else str(a)
        return f"{text}:{'*' if p is None else p}"
    local = ep(s.local, s.local_port)
    if s.bound_dev:
        host, _, port = local.rpartition(":")
        local = f"{host}%{s.bound_dev}:{port}"
    out = f"{s.proto} {s.state} {local} {ep(s.remote, s.remote_port)}"
    if s.processes:
        users = ",".join(f'("{p.name}",pid={p.pid})' for p in s.processes)
        out += f" users:({users})"
    return out


def _as_v4(addr: IPAddress) -> IPAddress:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _v6only(snap: HostSnapshot, s: Socket) -> tuple[bool, str | None]:
    if s.v6only is not None:
        return s.v6only, None
    value = snap.sysctl("net.ipv6.bindv6only", "0") == "1"
    return value, f"IPV6_V6ONLY not recorded for {socket_text(s)}: assumed net.ipv6.bindv6only={int(value)}"


def _dev_ok(snap: HostSnapshot, s: Socket, dev: str | None) -> bool:
    if not s.bound_dev:
        return True
    if dev is None:
        return False
    if s.bound_dev == dev:
        return True
    iface = snap.interface(dev)
    return iface is not None and iface.master == s.bound_dev


def _family_match(snap: HostSnapshot, s: Socket, pkt: Packet,
                  notes: list[str]) -> tuple[bool, str]:
    """Whether socket ``s`` can receive a packet of pkt's family; the reason when not."""
    if pkt.family is Family.IPV6:
        if s.family is Family.IPV4:
            return False, "an IPv4 socket does not receive IPv6 packets"
        if s.local.version == 6 and s.local.ipv4_mapped is not None:
            return False, "bound to a v4-mapped address, receives only IPv4"
        return True, ""
    if s.family is Family.IPV4:
        return True, ""
    # IPv6 socket, IPv4 packet
    if s.local.version == 6 and s.local.ipv4_mapped is not None:
        return True, ""
    if s.local == ipaddress.IPv6Address("::"):
        only, note = _v6only(snap, s)
        if note:
            notes.append(note)
        if only:
            return False, "a [::] socket with IPV6_V6ONLY does not receive IPv4"
        return True, ""
    return False, "bound to an IPv6 address"


def _addr_tier(s: Socket, dst: IPAddress) -> int | None:
    """0: bound to the exact destination, 1: wildcard, None: bound elsewhere."""
    local = _as_v4(s.local)
    if local == dst:
        return 0
    if local.is_unspecified:
        return 1
    return None


def lookup_socket(snap: HostSnapshot, pkt: Packet, *, dev: str | None) -> SocketMatch:
    """Find the socket a locally delivered TCP/UDP packet goes to (``dev``: arrival device)."""
    proto = {6: "tcp", 17: "udp"}.get(pkt.proto)
    if proto is None or pkt.dport is None or pkt.src is None:
        return SocketMatch(None, "", SocketDetail())
    dst = pkt.dst
    src = pkt.src
    notes: list[str] = []
    cands: list[SocketCandidate] = []
    relevant = [s for s in snap.sockets if s.proto == proto and s.local_port == pkt.dport]

    # Established / connected exact 4-tuple (TCP), scored candidates (UDP).
    scored: list[tuple[int, int, Socket, str]] = []  # (tier, -score, socket, how)
    reasons: dict[int, str] = {}
    for i, s in enumerate(relevant):
        ok, why = _family_match(snap, s, pkt, notes)
        if not ok:
            reasons[i] = why
            continue
        if not _dev_ok(snap, s, dev):
            reasons[i] = f"bound to device {s.bound_dev}, packet arrived on {dev or 'an unknown device'}"
            continue
        tier = _addr_tier(s, dst)
        if tier is None:
            reasons[i] = f"bound to {s.local}, packet is for {dst}"
            continue
        connected = s.remote is not None and not s.remote.is_unspecified
        if proto == "tcp":
            if s.state == "LISTEN":
                score = (2 if s.bound_dev else 1) + (1 if s.family is Family.IPV4 else 0)
                scored.append((tier + 10, -score, s, "listener"))
                reasons[i] = "listening socket"
                continue
            if s.state in CLOSED_STATES or not connected:
                reasons[i] = f"state {s.state}, not a connection"
                continue
            if _as_v4(s.remote) != src or s.remote_port != pkt.sport:  # type: ignore[arg-type]
                reasons[i] = f"connected to {s.remote}:{s.remote_port}, packet is from {src}:{pkt.sport}"
                continue
            scored.append((0, 0, s, "established"))
            reasons[i] = f"4-tuple matches ({s.state})"
            if s.state == "TIME-WAIT":
                notes.append("the matching connection is in TIME-WAIT: the kernel answers from "
                             "the timewait socket (an ACK or RST, or a new SYN reopens it through "
                             "a listener, depending on sequence numbers and timestamps the "
                             "snapshot does not hold); not modelled exactly")
            continue
        # UDP: __udp4_lib_lookup compute_score
        score = 2 if s.family is Family.IPV4 else 1
        if tier == 0:
            score += 4
        if connected:
            if _as_v4(s.remote) != src:  # type: ignore[arg-type]
                reasons[i] = f"connected to {s.remote}, packet is from {src}"
                continue
            score += 4
            if s.remote_port:
                if s.remote_port != pkt.sport:
                    reasons[i] = f"connected to port {s.remote_port}, packet is from port {pkt.sport}"
                    continue
                score += 4
        if s.bound_dev:
            score += 4
        scored.append((tier, -score, s, "connected" if connected else "bound"))
        reasons[i] = f"score {score}" + (" (connected)" if connected else "")

    winner: Socket | None = None
    how = ""
    uncertain = False
    if scored:
        scored.sort(key=lambda t: (t[0], t[1]))
        best = scored[0]
        winner, how = best[2], best[3]
        ties = [t for t in scored if t[0] == best[0] and t[1] == best[1]]
        if len(ties) > 1:
            uncertain = True
            notes.append(f"{len(ties)} sockets tie (SO_REUSEPORT group or duplicates): the kernel "
                         "picks one by hash; showing the first")
    for i, s in enumerate(relevant):
        chosen = s is winner
        why = reasons.get(i, "")
        if chosen:
            why = {"established": "4-tuple match (established connection)",
                   "listener": "listening socket, " + ("exact address" if _addr_tier(s, dst) == 0
                                                      else "wildcard address"),
                   "connected": "connected UDP socket matches source and port",
                   "bound": "bound UDP socket, " + ("exact address" if _addr_tier(s, dst) == 0
                                                   else "wildcard address")}[how]
        elif winner is not None and (why == "listening socket" or why.startswith("score")):
            why = f"{why}: a better match exists"
        cands.append(SocketCandidate(text=socket_text(s), chosen=chosen, reason=why))
    proc = winner.processes[0] if winner is not None and winner.processes else None
    detail = SocketDetail(candidates=tuple(cands),
                          winner=socket_text(winner) if winner is not None else None,
                          process=proc.name if proc else None, pid=proc.pid if proc else None)
    if winner is not None and how == "established" and winner.state == "TIME-WAIT":
        uncertain = True
    if winner is not None and not winner.processes:
        notes.append("the snapshot does not record the owning process of this socket")
    return SocketMatch(winner, how, detail, tuple(dict.fromkeys(notes)), uncertain)
