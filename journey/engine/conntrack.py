"""Connection tracking: the state a packet gets (NEW, ESTABLISHED, RELATED, INVALID, UNTRACKED),
the entry it creates or updates, and the NAT that conntrack applies to later packets of a flow.

Modelled after ``nf_conntrack_in`` and its protocol trackers (kernel 6.x):

- tuple lookup in both directions, first over the flows created earlier in this run (newest
  first), then over the snapshot's conntrack table;
- TCP: the flag sanity check of ``tcp_error`` (SYN+FIN, no flags, FIN without ACK... are
  INVALID), the ``tcp_conntracks`` state table (a SYN opens, a mid-stream ACK is picked up as NEW
  when ``net.netfilter.nf_conntrack_tcp_loose`` is 1 — the default — and a RST, FIN or SYN-ACK
  without an entry is INVALID), re-open of TIME_WAIT/CLOSE entries by a SYN. Sequence numbers
  and windows are not modelled (said in the reason);
- ICMP/ICMPv6: echo/timestamp/info/mask requests open a flow, replies without one are INVALID,
  errors quoting a tracked flow are RELATED (the quoted header is read from the packet payload
  when present); IPv6 neighbour discovery and MLD are UNTRACKED;
- UDP and other protocols: NEW until a reply was seen, then ESTABLISHED.

The snapshot's conntrack table may be empty although the host has live connections (conntrack
registers its hooks in a namespace only once something uses it, FACTS §3.6): lookups that find
nothing say so in ``CtView.reason``.

Pure: depends on ``journey.model`` only (and ``journey.engine.netfilter`` types for typing);
no I/O, no textual, no rich.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from journey.model.family import Family, IPAddress
from journey.model.journey import Change
from journey.model.packet import Packet
from journey.model.snapshot import ConntrackEntry, CtTuple, HostSnapshot

if TYPE_CHECKING:
    from journey.engine.netfilter.pipeline import Hook
    from journey.engine.netfilter.walker import NatBinding

__all__ = [
    "CtState",
    "CtView",
    "ct_after_nat",
    "ct_apply_nat",
    "ct_commit",
    "ct_host_reply",
    "ct_lookup",
    "entry_has_nat",
    "nat_clash",
    "packet_tuple",
    "tuple_text",
    "untracked_view",
]


class CtState(enum.StrEnum):
    NEW = "NEW"
    ESTABLISHED = "ESTABLISHED"
    RELATED = "RELATED"
    INVALID = "INVALID"
    UNTRACKED = "UNTRACKED"


@dataclass(frozen=True, slots=True)
class CtView:
    """What conntrack knows about one packet at one moment."""

    state: CtState
    direction: str | None  # "original" | "reply"
    entry: ConntrackEntry | None  # existing entry (snapshot / earlier in this run) or the tentative new one
    source: str  # "snapshot" | "flow" (earlier packet of this run) | "new" | "untracked" | "none"
    reason: str
    status: tuple[str, ...] = ()  # SEEN_REPLY, ASSURED, DST_NAT, SRC_NAT, ...
    mark: int = 0  # connmark
    zone: int = 0
    uncertain: bool = False
    tcp_state: str | None = None  # TCP state the entry moves to with this packet

    @property
    def nat_pending(self) -> bool:
        """The nat chains still have to decide for this flow (its first packet)."""
        return self.state is CtState.NEW and self.source == "new"


# -- tuples ------------------------------------------------------------------------------------

PORT_PROTOS = frozenset({6, 17, 33, 132, 136})  # tcp, udp, dccp, sctp, udplite

ICMP4_REPLY = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 17: 18, 18: 17}
ICMP4_NEW = frozenset({8, 13, 15, 17})
ICMP4_ERRORS = frozenset({3, 4, 5, 11, 12})
ICMP6_REPLY = {128: 129, 129: 128, 139: 140, 140: 139}
ICMP6_NEW = frozenset({128, 139})
ICMP6_ERRORS = frozenset({1, 2, 3, 4})
ICMP6_NOCT = frozenset({130, 131, 132, 133, 134, 135, 136, 143})  # MLD + ND: untracked

TCP_STATES = ("NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT",
              "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2")
_IV = "INVALID"
_IG = "IGNORE"
_TCP_ROWS = ("syn", "synack", "fin", "ack", "rst", "none")
# tcp_conntracks[dir][index][state] from nf_conntrack_proto_tcp.c
_NO, _SS, _SR, _ES, _FW, _CW, _LA, _TW, _CL, _S2 = TCP_STATES
_TCP_TABLE: dict[str, dict[str, tuple[str, ...]]] = {
    "original": {
        "syn": (_SS, _SS, _IG, _IG, _IG, _IG, _IG, _SS, _SS, _S2),
        "synack": (_IV, _IV, _SR, _IV, _IV, _IV, _IV, _IV, _IV, _SR),
        "fin": (_IV, _IV, _FW, _FW, _LA, _LA, _LA, _TW, _CL, _IV),
        "ack": (_ES, _IV, _ES, _ES, _CW, _CW, _TW, _TW, _CL, _IV),
        "rst": (_IV, _CL, _CL, _CL, _CL, _CL, _CL, _CL, _CL, _CL),
        "none": (_IV,) * 10,
    },
    "reply": {
        "syn": (_IV, _S2, _IV, _IV, _IV, _IV, _IV, _SS, _IV, _S2),
        "synack": (_IV, _SR, _IG, _IG, _IG, _IG, _IG, _IG, _IG, _SR),
        "fin": (_IV, _IV, _FW, _FW, _LA, _LA, _LA, _TW, _CL, _IV),
        "ack": (_IV, _IG, _SR, _ES, _CW, _CW, _TW, _TW, _CL, _IG),
        "rst": (_IV, _CL, _CL, _CL, _CL, _CL, _CL, _CL, _CL, _CL),
        "none": (_IV,) * 10,
    },
}
# tcp_valid_flags (PSH stripped; ECE/CWR ignored)
_TCP_VALID = frozenset({0x02, 0x22, 0x12, 0x04, 0x14, 0x11, 0x31, 0x10, 0x30})
_TIMEOUTS = {"SYN_SENT": 120, "SYN_RECV": 60, "ESTABLISHED": 432000, "FIN_WAIT": 120,
             "CLOSE_WAIT": 60, "LAST_ACK": 30, "TIME_WAIT": 120, "CLOSE": 10}


def _tcp_index(bits: int) -> str:
    if bits & 0x04:
        return "rst"
    if bits & 0x02:
        return "synack" if bits & 0x10 else "syn"
    if bits & 0x01:
        return "fin"
    if bits & 0x10:
        return "ack"
    return "none"


def packet_tuple(pkt: Packet) -> CtTuple:
    """The conntrack tuple of a packet (ports, or ICMP type/code/id)."""
    src = pkt.src if pkt.src is not None else _unspecified(pkt.family)
    if pkt.proto in PORT_PROTOS:
        return CtTuple(src=src, dst=pkt.dst, sport=pkt.sport, dport=pkt.dport)
    if pkt.proto in (1, 58):
        return CtTuple(src=src, dst=pkt.dst, icmp_type=pkt.icmp_type, icmp_code=pkt.icmp_code,
                       icmp_id=pkt.icmp_id)
    return CtTuple(src=src, dst=pkt.dst)


def _unspecified(family: Family) -> IPAddress:
    return ipaddress.IPv4Address(0) if family is Family.IPV4 else ipaddress.IPv6Address(0)


def _invert(t: CtTuple, proto: int) -> CtTuple:
    itype = t.icmp_type
    if itype is not None:
        table = ICMP6_REPLY if proto == 58 else ICMP4_REPLY
        itype = table.get(itype, itype)
    return CtTuple(src=t.dst, dst=t.src, sport=t.dport, dport=t.sport, icmp_type=itype,
                   icmp_code=t.icmp_code, icmp_id=t.icmp_id)


def _same(a: CtTuple, b: CtTuple, proto: int) -> bool:
    if a.src != b.src or a.dst != b.dst:
        return False
    if proto in PORT_PROTOS:
        return a.sport == b.sport and a.dport == b.dport
    if proto in (1, 58):
        return a.icmp_id == b.icmp_id and a.icmp_type == b.icmp_type and (a.icmp_code or 0) == (b.icmp_code or 0)
    return True


def _reply_tuple(e: ConntrackEntry) -> CtTuple:
    """The entry's reply tuple, with the ICMP reply type filled in when a parser left it out."""
    r = e.reply
    if e.proto in (1, 58) and r.icmp_type is None and e.orig.icmp_type is not None:
        table = ICMP6_REPLY if e.proto == 58 else ICMP4_REPLY
        r = replace(r, icmp_type=table.get(e.orig.icmp_type, e.orig.icmp_type),
                    icmp_code=r.icmp_code if r.icmp_code is not None else e.orig.icmp_code,
                    icmp_id=r.icmp_id if r.icmp_id is not None else e.orig.icmp_id)
    return r


def tuple_text(proto: int, t: CtTuple) -> str:
    """``tcp 10.0.0.1:40000 -> 10.0.0.2:80`` / ``icmp 10.0.0.1 -> 10.0.0.2 type 8 code 0 id 7``."""
    from journey.model.packet import proto_name

    def hp(a: IPAddress, p: int | None) -> str:
        s = f"[{a}]" if a.version == 6 and p is not None else str(a)
        return s if p is None else f"{s}:{p}"

    if proto in PORT_PROTOS:
        return f"{proto_name(proto)} {hp(t.src, t.sport)} -> {hp(t.dst, t.dport)}"
    if proto in (1, 58):
        return (f"{proto_name(proto)} {t.src} -> {t.dst} type {t.icmp_type} code "
                f"{t.icmp_code or 0} id {t.icmp_id}")
    return f"{proto_name(proto)} {t.src} -> {t.dst}"


def entry_has_nat(e: ConntrackEntry) -> tuple[bool, bool]:
    """(SNAT, DNAT) of an entry: its reply tuple is not the inverse of its original tuple."""
    o, r = e.orig, _reply_tuple(e)
    dnat = o.dst != r.src or (e.proto in PORT_PROTOS and o.dport != r.sport)
    snat = o.src != r.dst or (e.proto in PORT_PROTOS and o.sport != r.dport)
    if e.proto in (1, 58) and o.icmp_id != r.icmp_id:
        snat = True
    return snat or "SRC_NAT" in e.status, dnat or "DST_NAT" in e.status


def _seen_reply(e: ConntrackEntry) -> bool:
    return "SEEN_REPLY" in e.status or "ASSURED" in e.status or "UNREPLIED" not in e.status


def _status_after(e: ConntrackEntry, direction: str | None,
                  tcp_state: str | None) -> tuple[str, ...]:
    """The entry's status once ``nf_conntrack_in`` has processed a packet of ``direction``,
    i.e. what the rules of the hook already see.

    The protocol tracker runs first: TCP sets ASSURED on a valid ACK moving SYN_RECV (or a
    picked-up ESTABLISHED) to ESTABLISHED once a reply was seen (``tcp_packet``); UDP sets it on
    traffic after a reply. Then a reply-direction packet sets SEEN_REPLY (and the entry is no
    longer UNREPLIED) -- still before any rule runs.
    """
    status = list(e.status)
    seen = _seen_reply(e)
    if "ASSURED" not in status and seen and (
            (e.proto == 6 and tcp_state == "ESTABLISHED"
             and (e.tcp_state or "ESTABLISHED") in ("SYN_RECV", "ESTABLISHED"))
            or e.proto == 17):
        status.append("ASSURED")
    if direction == "reply":
        if "UNREPLIED" in status:
            status.remove("UNREPLIED")
        if "SEEN_REPLY" not in status:
            status.append("SEEN_REPLY")
    return tuple(status)


def untracked_view(reason: str) -> CtView:
    return CtView(state=CtState.UNTRACKED, direction=None, entry=None, source="untracked",
                  reason=reason)


# -- lookup ------------------------------------------------------------------------------------

def _find(entries: tuple[ConntrackEntry, ...], family: Family, proto: int, t: CtTuple,
          zone: int) -> tuple[ConntrackEntry, str] | None:
    for e in entries:
        if e.proto != proto or e.family is not family or e.zone != zone:
            continue
        if _same(e.orig, t, proto):
            return e, "original"
        if _same(_reply_tuple(e), t, proto):
            return e, "reply"
    return None


def _empty_table_note(snap: HostSnapshot) -> str:
    if snap.conntrack:
        return ""
    part = snap.provenance.part("conntrack")
    if part is not None and part.state != "collected":
        return f"; the snapshot has no conntrack table ({part.reason or part.state})"
    return ("; the snapshot's conntrack table is empty (conntrack only tracks in a namespace once "
            "something uses it), so a live connection may be missing")


def _new_entry(pkt: Packet, zone: int, tcp_state: str | None) -> ConntrackEntry:
    t = packet_tuple(pkt)
    return ConntrackEntry(family=pkt.family, proto=pkt.proto, orig=t, reply=_invert(t, pkt.proto),
                          status=(), tcp_state=tcp_state, zone=zone)


def _inner_from_payload(pkt: Packet) -> tuple[int, CtTuple] | None:
    """The quoted (inner) packet of an ICMP error, read from the payload bytes when present."""
    b = pkt.payload
    if len(b) < 20:
        return None
    ver = b[0] >> 4
    if ver == 4 and pkt.family is Family.IPV4:
        ihl = (b[0] & 0x0F) * 4
        proto = b[9]
        src: IPAddress = ipaddress.IPv4Address(b[12:16])
        dst: IPAddress = ipaddress.IPv4Address(b[16:20])
        l4 = ihl
    elif ver == 6 and pkt.family is Family.IPV6 and len(b) >= 40:
        proto = b[6]
        src = ipaddress.IPv6Address(b[8:24])
        dst = ipaddress.IPv6Address(b[24:40])
        l4 = 40
    else:
        return None
    if proto in PORT_PROTOS and len(b) >= l4 + 4:
        sport = int.from_bytes(b[l4:l4 + 2], "big")
        dport = int.from_bytes(b[l4 + 2:l4 + 4], "big")
        return proto, CtTuple(src=src, dst=dst, sport=sport, dport=dport)
    if proto in (1, 58) and len(b) >= l4 + 8:
        return proto, CtTuple(src=src, dst=dst, icmp_type=b[l4], icmp_code=b[l4 + 1],
                              icmp_id=int.from_bytes(b[l4 + 4:l4 + 6], "big"))
    return proto, CtTuple(src=src, dst=dst)


def _related(snap: HostSnapshot, flows: tuple[ConntrackEntry, ...], pkt: Packet, zone: int,
             kind: str) -> CtView:
    inner = _inner_from_payload(pkt)
    if inner is not None:
        proto, t = inner
        for src_name, entries in (("flow", flows), ("snapshot", snap.conntrack)):
            hit = _find(entries, pkt.family, proto, t, zone)
            if hit is not None:
                e, d = hit
                direction = "reply" if d == "original" else "original"
                return CtView(state=CtState.RELATED, direction=direction, entry=e, source=src_name,
                              reason=f"{kind} quoting {tuple_text(proto, t)}, a packet of a tracked "
                                     f"flow ({src_name} entry): RELATED",
                              status=e.status, mark=e.mark, zone=zone, tcp_state=e.tcp_state)
        return CtView(state=CtState.INVALID, direction=None, entry=None, source="none",
                      reason=f"{kind} quoting {tuple_text(proto, t)}, which matches no tracked "
                             f"flow: conntrack attaches no entry (INVALID){_empty_table_note(snap)}",
                      zone=zone)
    # no quoted header: guess from the addresses (the error goes back to the original sender)
    cands: list[tuple[ConntrackEntry, str, str]] = []
    for src_name, entries in (("flow", flows), ("snapshot", snap.conntrack)):
        for e in entries:
            if e.family is not pkt.family or e.zone != zone:
                continue
            # the error goes back to the quoted packet's source *as it was on the wire*, i.e.
            # after this host's NAT: reply.dst for an original-direction packet (SNAT), orig.dst
            # for a reply-direction one (un-DNAT); without NAT these are orig.src / reply.src
            r = _reply_tuple(e)
            if r.dst == pkt.dst:
                cands.append((e, "reply", src_name))
            elif e.orig.dst == pkt.dst:
                cands.append((e, "original", src_name))
    if cands:
        e, direction, src_name = cands[0]
        return CtView(state=CtState.RELATED, direction=direction, entry=e, source=src_name,
                      reason=f"{kind} without a quoted header in the packet: assumed to quote the "
                             f"flow {tuple_text(e.proto, e.orig)} ({len(cands)} candidate(s))",
                      status=e.status, mark=e.mark, zone=zone, uncertain=True, tcp_state=e.tcp_state)
    return CtView(state=CtState.INVALID, direction=None, entry=None, source="none",
                  reason=f"{kind} whose quoted packet matches no tracked flow: INVALID (the packet "
                         f"spec carries no quoted header){_empty_table_note(snap)}",
                  zone=zone, uncertain=True)


def _tcp_loose(snap: HostSnapshot) -> bool:
    return snap.sysctl("net.netfilter.nf_conntrack_tcp_loose", "1") != "0"


def ct_lookup(snap: HostSnapshot, flows: tuple[ConntrackEntry, ...], pkt: Packet, *,
              zone: int = 0) -> CtView:
    """Conntrack state of ``pkt`` given the snapshot's table and this run's ``flows`` (newest first)."""
    fam, proto = pkt.family, pkt.proto
    # -- protocol error checks (the *_error() callbacks) that run before any lookup -----------
    if proto == 58 and pkt.icmp_type in ICMP6_NOCT:
        return CtView(state=CtState.UNTRACKED, direction=None, entry=None, source="untracked",
                      reason=f"ICMPv6 type {pkt.icmp_type} (neighbour discovery / MLD) is never "
                             "tracked (icmpv6_error sets it untracked)", zone=zone)
    if proto == 6:
        bits = pkt.flag_bits & 0x3F
        if (bits & ~0x08) not in _TCP_VALID:
            return CtView(state=CtState.INVALID, direction=None, entry=None, source="none",
                          reason=f"TCP flags {pkt.tcp_flags or '(none)'} are an invalid "
                                 "combination (tcp_error): conntrack attaches no entry",
                          zone=zone)
    if proto == 1 and pkt.icmp_type in ICMP4_ERRORS:
        return _related(snap, flows, pkt, zone, f"ICMP error type {pkt.icmp_type}")
    if proto == 58 and pkt.icmp_type in ICMP6_ERRORS:
        return _related(snap, flows, pkt, zone, f"ICMPv6 error type {pkt.icmp_type}")

    t = packet_tuple(pkt)
    hit: tuple[ConntrackEntry, str] | None = None
    src_name = "flow"
    hit = _find(flows, fam, proto, t, zone)
    if hit is None:
        src_name = "snapshot"
        hit = _find(snap.conntrack, fam, proto, t, zone)
    if hit is not None:
        return _existing(snap, pkt, hit[0], hit[1], src_name, zone)
    return _no_entry(snap, pkt, zone)


def _existing(snap: HostSnapshot, pkt: Packet, e: ConntrackEntry, d: str, src_name: str,
              zone: int) -> CtView:
    where = "this run's earlier packet" if src_name == "flow" else "the snapshot's conntrack table"
    desc = f"{tuple_text(e.proto, e.orig)} ({where})"
    seen = _seen_reply(e)
    if e.proto == 6:
        idx = _tcp_index(pkt.flag_bits)
        old = e.tcp_state or "ESTABLISHED"
        try:
            col = TCP_STATES.index(old)
        except ValueError:
            col = 3
        new = _TCP_TABLE[d][idx][col]
        if d == "original" and idx == "syn" and old in ("TIME_WAIT", "CLOSE"):
            view = _no_entry(snap, pkt, zone)
            return replace(view, reason=f"SYN re-opens the {old} entry {desc}: the old entry is "
                                        "destroyed and a new one created (NEW)")
        if new == _IV:
            return CtView(state=CtState.INVALID, direction=d, entry=e, source=src_name,
                          reason=f"TCP {pkt.tcp_flags or 'no flags'} in the {d} direction is not a "
                                 f"valid transition from {old} for {desc}: INVALID",
                          status=e.status, mark=e.mark, zone=zone, tcp_state=old)
        state = CtState.ESTABLISHED if (d == "reply" or seen) else CtState.NEW
        note = "" if new != _IG else " (segment ignored by the state machine)"
        nstate = old if new == _IG else new
        return CtView(state=state, direction=d, entry=e, source=src_name,
                      reason=f"{d} direction of {desc}, TCP {old} -> {nstate}{note}: {state} "
                             "(sequence numbers and windows are not checked)",
                      status=_status_after(e, d, nstate), mark=e.mark, zone=zone,
                      tcp_state=nstate)
    if d == "reply":
        state = CtState.ESTABLISHED
        why = "reply direction"
    elif seen:
        state = CtState.ESTABLISHED
        why = "original direction, a reply was seen"
    else:
        state = CtState.NEW
        why = "original direction, no reply seen yet"
    return CtView(state=state, direction=d, entry=e, source=src_name,
                  reason=f"{why} of {desc}: {state}", status=_status_after(e, d, e.tcp_state),
                  mark=e.mark, zone=zone, tcp_state=e.tcp_state)


def _no_entry(snap: HostSnapshot, pkt: Packet, zone: int) -> CtView:
    proto = pkt.proto
    empty = _empty_table_note(snap)
    if proto == 6:
        idx = _tcp_index(pkt.flag_bits)
        new = _TCP_TABLE["original"][idx][0]
        if new == _IV:
            return CtView(state=CtState.INVALID, direction=None, entry=None, source="none",
                          reason=f"TCP {pkt.tcp_flags or 'no flags'} ({idx}) without a conntrack "
                                 f"entry cannot start a connection (tcp_new): INVALID{empty}",
                          zone=zone, uncertain=bool(empty))
        if new == _ES:
            if not _tcp_loose(snap):
                return CtView(state=CtState.INVALID, direction=None, entry=None, source="none",
                              reason="mid-stream TCP segment without an entry and "
                                     f"nf_conntrack_tcp_loose=0: not picked up, INVALID{empty}",
                              zone=zone, uncertain=bool(empty))
            return CtView(state=CtState.NEW, direction="original",
                          entry=_new_entry(pkt, zone, "ESTABLISHED"), source="new",
                          reason="mid-stream TCP segment without an entry picked up: "
                                 f"nf_conntrack_tcp_loose=1 makes it NEW{empty}",
                          zone=zone, uncertain=bool(empty), tcp_state="ESTABLISHED")
        return CtView(state=CtState.NEW, direction="original", entry=_new_entry(pkt, zone, new),
                      source="new", reason="TCP SYN without an entry opens a connection: NEW",
                      zone=zone, tcp_state=new)
    if proto == 1 or proto == 58:
        news = ICMP6_NEW if proto == 58 else ICMP4_NEW
        if pkt.icmp_type not in news:
            return CtView(state=CtState.INVALID, direction=None, entry=None, source="none",
                          reason=f"ICMP type {pkt.icmp_type} cannot open a flow and matches no "
                                 f"entry: INVALID{empty}", zone=zone, uncertain=bool(empty))
        return CtView(state=CtState.NEW, direction="original", entry=_new_entry(pkt, zone, None),
                      source="new", reason=f"ICMP request type {pkt.icmp_type} without an entry: NEW",
                      zone=zone)
    return CtView(state=CtState.NEW, direction="original", entry=_new_entry(pkt, zone, None),
                  source="new", reason=f"no conntrack entry for this tuple: NEW{empty}", zone=zone)


# -- NAT through conntrack ---------------------------------------------------------------------

def nat_clash(snap: HostSnapshot, flows: tuple[ConntrackEntry, ...], view: CtView,
              pkt_orig: Packet, pkt_final: Packet) -> ConntrackEntry | None:
    """Another flow already using the reply tuple a NEW NATed flow would get
    (``nf_conntrack_tuple_taken``), or None.

    The kernel's ``get_unique_tuple`` then tries other ports of the binding's range (random
    offset for source NAT); when there is none left the entry clashes at confirm
    (``__nf_conntrack_confirm``) and the packet is dropped."""
    if not view.nat_pending:
        return None
    proto = pkt_final.proto
    orig = packet_tuple(pkt_orig)
    reply = _invert(packet_tuple(pkt_final), proto)
    shadowed = [f.orig for f in flows if f.proto == proto]
    for src_name, entries in (("flow", flows), ("snapshot", snap.conntrack)):
        for e in entries:
            if e.proto != proto or e.family is not pkt_final.family or e.zone != view.zone:
                continue
            if _same(e.orig, orig, proto):
                continue
            if src_name == "snapshot" and any(_same(o, e.orig, proto) for o in shadowed):
                continue
            if _same(e.orig, reply, proto) or _same(_reply_tuple(e), reply, proto):
                return e
    return None


def ct_after_nat(view: CtView, pkt_now: Packet) -> CtView:
    """The view of a NEW flow after a NAT binding: its reply tuple follows the translated packet
    (as ``nf_nat_setup_info`` rewrites the reply tuple), with DST_NAT / SRC_NAT status."""
    if view.entry is None or not view.nat_pending:
        return view
    e = view.entry
    o = e.orig
    reply = _invert(packet_tuple(pkt_now), pkt_now.proto)
    status = list(view.status)
    if (o.dst, o.dport) != (reply.src, reply.sport) and "DST_NAT" not in status:
        status.append("DST_NAT")
    if (o.src, o.sport, o.icmp_id) != (reply.dst, reply.dport, reply.icmp_id) and "SRC_NAT" not in status:
        status.append("SRC_NAT")
    return replace(view, entry=replace(e, reply=reply, status=tuple(status)), status=tuple(status))


def _manip(view: CtView, hook: Hook) -> str:
    from journey.engine.netfilter.pipeline import Hook as H

    return "dst" if hook in (H.PREROUTING, H.OUTPUT) else "src"


def ct_apply_nat(view: CtView, pkt: Packet, hook: Hook) -> tuple[Packet, list[Change]]:
    """NAT of a non-first packet of a NATed flow, as conntrack does it at ``hook``.

    Original direction: DNAT (dst part) at PREROUTING/OUTPUT, SNAT (src part) at
    POSTROUTING/INPUT; reply direction: the inverse (un-SNAT at PREROUTING/OUTPUT, un-DNAT at
    POSTROUTING/INPUT). ICMP errors (RELATED) get their outer addresses translated; the quoted
    header is translated by the kernel too (not modelled field by field). A flow's first packet
    is NATed by the nat chains instead (nothing happens here).
    """
    e = view.entry
    if e is None or view.nat_pending or view.state in (CtState.INVALID, CtState.UNTRACKED):
        return pkt, []
    snat, dnat = entry_has_nat(e)
    if not snat and not dnat:
        return pkt, []
    manip = _manip(view, hook)
    reply = _reply_tuple(e)
    if view.direction == "reply":
        target = _invert(e.orig, e.proto)
        need = snat if manip == "dst" else dnat
    else:
        target = _invert(reply, e.proto)
        need = dnat if manip == "dst" else snat
    if not need:
        return pkt, []
    new = pkt
    ports = pkt.proto in PORT_PROTOS and view.state is not CtState.RELATED
    if manip == "dst":
        new = replace(new, dst=target.dst)
        if ports:
            new = replace(new, dport=target.dport)
    else:
        new = replace(new, src=target.src)
        if ports:
            new = replace(new, sport=target.sport)
    if pkt.proto in (1, 58) and view.state is not CtState.RELATED and target.icmp_id is not None:
        new = replace(new, icmp_id=target.icmp_id)
    changes = [Change(f, _s(a), _s(b)) for f, a, b in pkt.diff(new)]
    return new, changes


def _s(v: object) -> str:
    return "-" if v is None else str(v)


# -- packets the kernel itself answers with ----------------------------------------------------

def ct_host_reply(snap: HostSnapshot, flows: tuple[ConntrackEntry, ...], pkt: Packet, *,
                  zone: int = 0) -> tuple[tuple[ConntrackEntry, ...], str | None]:
    """Conntrack's part in a packet the local stack sends in answer (a listener's SYN-ACK, the
    RST of a closed port, an echo reply): it leaves through OUTPUT, where ``nf_conntrack_in``
    finds the entry the answered packet confirmed and processes it in the reply direction (TCP
    SYN_SENT -> SYN_RECV, SEEN_REPLY; a RST answering a SYN deletes the entry). ICMP errors are
    RELATED and change nothing; a packet matching no entry (INVALID) neither.

    Returns the new flows and a sentence saying what changed (None when nothing did). The raw
    OUTPUT chain (a NOTRACK for the answer) is not consulted.
    """
    view = ct_lookup(snap, flows, pkt, zone=zone)
    if (view.entry is None or view.source not in ("flow", "snapshot") or view.direction != "reply"
            or view.state in (CtState.INVALID, CtState.UNTRACKED, CtState.RELATED)):
        return flows, None
    e = view.entry
    new = ct_commit(view, pkt, pkt, None, flows)
    desc = tuple_text(e.proto, e.orig)
    gone = not any(f.proto == e.proto and f.zone == e.zone and _same(f.orig, e.orig, e.proto)
                   and f.tcp_state != "CLOSE" for f in new)
    if gone:
        return new, (f"conntrack sees this RST answer the first packet of {desc} and deletes "
                     "the entry")
    upd = next(f for f in new if f.proto == e.proto and f.zone == e.zone
               and _same(f.orig, e.orig, e.proto))
    what = []
    if e.proto == 6 and upd.tcp_state != e.tcp_state:
        what.append(f"{e.tcp_state} -> {upd.tcp_state}")
    what += ["+" + st for st in upd.status if st not in e.status]
    return new, ("conntrack sees it leave (reply direction)"
                 + (f": {', '.join(what)}" if what else ""))


# -- commit ------------------------------------------------------------------------------------

def ct_commit(view: CtView, pkt_orig: Packet, pkt_final: Packet, nat: NatBinding | None,
              flows: tuple[ConntrackEntry, ...]) -> tuple[ConntrackEntry, ...]:
    """Confirm the packet's conntrack entry (end of POSTROUTING / INPUT); the new flows, newest first.

    A NEW flow's entry gets ``orig`` = the tuple seen at the conntrack lookup and ``reply`` = the
    inverse of the packet as it leaves (so DNAT shows as reply src = new dst, SNAT as reply dst =
    new src). Existing entries are updated (SEEN_REPLY, ASSURED, TCP state, connmark).
    UNTRACKED, INVALID and RELATED packets change nothing.
    """
    if view.state in (CtState.UNTRACKED, CtState.INVALID, CtState.RELATED) or view.entry is None:
        return flows
    e = view.entry
    if view.nat_pending:
        orig = packet_tuple(pkt_orig)
        reply = _invert(packet_tuple(pkt_final), pkt_final.proto)
        status = ["CONFIRMED", "UNREPLIED"]
        if (orig.dst, orig.dport) != (reply.src, reply.sport) or (nat is not None and nat.kind in ("DNAT", "REDIRECT")):
            status.append("DST_NAT")
        if (orig.src, orig.sport, orig.icmp_id) != (reply.dst, reply.dport, reply.icmp_id) or (
                nat is not None and nat.kind in ("SNAT", "MASQUERADE")):
            status.append("SRC_NAT")
        tcp_state = view.tcp_state if pkt_final.proto == 6 else None
        timeout = _TIMEOUTS.get(tcp_state or "") if pkt_final.proto == 6 else (
            30 if pkt_final.proto in (1, 58, 17) else 600)
        new = ConntrackEntry(family=pkt_orig.family, proto=pkt_orig.proto, orig=orig, reply=reply,
                             status=tuple(status), tcp_state=tcp_state, mark=view.mark,
                             zone=view.zone, timeout=timeout)
        rest = tuple(f for f in flows if not (f.proto == new.proto and f.zone == new.zone
                                              and _same(f.orig, orig, new.proto)))
        return (new, *rest)
    if (e.proto == 6 and view.direction == "reply" and "R" in pkt_orig.tcp_flags
            and not ("SEEN_REPLY" in e.status or "ASSURED" in e.status)):
        # a RST answering the SYN: the kernel deletes the entry at once (tcp_packet)
        kept = tuple(f for f in flows if not (f.proto == e.proto and f.zone == e.zone
                                              and _same(f.orig, e.orig, e.proto)))
        if view.source == "snapshot":  # shadow the snapshot's entry with a closed one
            kept = (replace(e, tcp_state="CLOSE", status=(*e.status, "DYING")), *kept)
        return kept
    tcp_state = view.tcp_state if e.proto == 6 else e.tcp_state
    upd = replace(e, status=_status_after(e, view.direction, tcp_state), tcp_state=tcp_state,
                  mark=view.mark)
    out: list[ConntrackEntry] = []
    replaced = False
    for f in flows:
        if not replaced and f.proto == e.proto and f.zone == e.zone and _same(f.orig, e.orig, e.proto):
            out.append(upd)
            replaced = True
        else:
            out.append(f)
    if not replaced:
        out.insert(0, upd)
    return tuple(out)
