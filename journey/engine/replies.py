"""Packets the kernel itself sends in answer: TCP RST, SYN-ACK, ICMP / ICMPv6 errors, echo replies.

Each ``Reply`` carries a ``Packet`` marked ``local`` that the user can follow by simulating it
(through OUTPUT and POSTROUTING, where conntrack sees it as the reply / RELATED direction).
Also maps REJECT's ``--reject-with`` (iptables) and nft ``reject with ...`` words to ICMP types.

Pure: builds values only; no I/O, no rich, no textual.
"""

from __future__ import annotations

from dataclasses import dataclass

from journey.model.family import Family, IPAddress
from journey.model.journey import Reply
from journey.model.packet import Packet

ICMP_ERROR_TOS = 0xC0  # icmp_send() sends errors with TOS IPTOS_PREC_INTERNETCONTROL


@dataclass(frozen=True, slots=True)
class IcmpKind:
    """An ICMP error as (type, code) for IPv4 and IPv6, with a readable name."""

    name: str
    v4: tuple[int, int]
    v6: tuple[int, int]


ICMP_ERRORS: dict[str, IcmpKind] = {k.name: k for k in (
    IcmpKind("net-unreachable", (3, 0), (1, 0)),
    IcmpKind("host-unreachable", (3, 1), (1, 3)),
    IcmpKind("proto-unreachable", (3, 2), (4, 1)),
    IcmpKind("port-unreachable", (3, 3), (1, 4)),
    IcmpKind("frag-needed", (3, 4), (2, 0)),
    IcmpKind("net-prohibited", (3, 9), (1, 1)),
    IcmpKind("host-prohibited", (3, 10), (1, 1)),
    IcmpKind("admin-prohibited", (3, 13), (1, 1)),
    IcmpKind("ttl-exceeded", (11, 0), (3, 0)),
    IcmpKind("no-route", (3, 0), (1, 0)),
    IcmpKind("addr-unreachable", (3, 1), (1, 3)),
    IcmpKind("policy-fail", (3, 13), (1, 5)),
    IcmpKind("reject-route", (3, 13), (1, 6)),
    # not errors REJECT can send: what forwarding itself answers
    IcmpKind("redirect-host", (5, 1), (137, 0)),  # ICMP redirect host / NDISC redirect
    IcmpKind("beyond-scope", (3, 13), (1, 2)),  # IPv6 only: link-local source off its link
)}

# iptables / ip6tables / nft spellings -> ICMP_ERRORS key (or "tcp-reset")
_REJECT_ALIASES: dict[str, str] = {
    "icmp-net-unreachable": "net-unreachable",
    "net-unreach": "net-unreachable",
    "icmp-host-unreachable": "host-unreachable",
    "host-unreach": "host-unreachable",
    "icmp-proto-unreachable": "proto-unreachable",
    "icmp-prot-unreachable": "proto-unreachable",
    "prot-unreachable": "proto-unreachable",
    "icmp-port-unreachable": "port-unreachable",
    "port-unreach": "port-unreachable",
    "icmp-net-prohibited": "net-prohibited",
    "net-prohib": "net-prohibited",
    "icmp-host-prohibited": "host-prohibited",
    "host-prohib": "host-prohibited",
    "icmp-admin-prohibited": "admin-prohibited",
    "admin-prohib": "admin-prohibited",
    "icmp6-no-route": "no-route",
    "no-route": "no-route",
    "icmp6-adm-prohibited": "admin-prohibited",
    "adm-prohibited": "admin-prohibited",
    "icmp6-addr-unreachable": "addr-unreachable",
    "addr-unreach": "addr-unreachable",
    "icmp6-port-unreachable": "port-unreachable",
    "icmp6-policy-fail": "policy-fail",
    "icmp6-reject-route": "reject-route",
    "tcp-reset": "tcp-reset",
    "tcp-rst": "tcp-reset",
    "tcp reset": "tcp-reset",
}


def normalise_reject_with(with_: str | None) -> str:
    """``--reject-with icmp-host-prohibited`` / ``with icmpx type admin-prohibited`` -> key."""
    text = (with_ or "").strip().lower()
    for prefix in ("--reject-with", "reject", "with"):
        if text.startswith(prefix):
            text = text[len(prefix):].strip()
    for prefix in ("icmpx type", "icmpv6 type", "icmp6 type", "icmp type", "icmpx", "icmpv6",
                   "icmp"):
        if text.startswith(prefix + " "):
            text = text[len(prefix) + 1:].strip()
    if text == "" or text == "icmp":
        return "port-unreachable"
    if text in ICMP_ERRORS or text == "tcp-reset":
        return text
    return _REJECT_ALIASES.get(text, text)


def _ep(addr: IPAddress | None, port: int | None) -> str:
    if addr is None:
        return "*" if port is None else f"*:{port}"
    a = f"[{addr}]" if addr.version == 6 and port is not None else str(addr)
    return a if port is None else f"{a}:{port}"


def describe(pkt: Packet) -> str:
    """Short text of a packet's addresses: ``tcp 198.51.100.7:40000 > 192.0.2.10:80``."""
    names = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6", 132: "sctp"}
    return f"{names.get(pkt.proto, f'proto {pkt.proto}')} {_ep(pkt.src, pkt.sport)} > {_ep(pkt.dst, pkt.dport)}"


def tcp_rst(pkt: Packet, *, src: IPAddress | None = None, reason: str = "") -> Reply | None:
    """The RST the kernel answers a TCP segment with (none for a RST: RSTs are never answered)."""
    if pkt.proto != 6 or "R" in pkt.tcp_flags or pkt.src is None:
        return None
    # tcp_v4_send_reset: ACK set -> RST seq=ack; else RST+ACK acknowledging the segment
    flags = "R" if "A" in pkt.tcp_flags else "RA"
    rsrc = src if src is not None else pkt.dst
    out = Packet(family=pkt.family, proto=6, src=rsrc, dst=pkt.src, sport=pkt.dport,
                 dport=pkt.sport, tcp_flags=flags, local=True)
    return Reply(kind="tcp-rst", src=rsrc, dst=pkt.src, packet=out,
                 reason=reason or f"TCP reset in answer to {describe(pkt)}")


def syn_ack(pkt: Packet, *, reason: str = "") -> Reply | None:
    """The SYN-ACK a listening socket answers a SYN with."""
    if pkt.proto != 6 or pkt.src is None:
        return None
    out = Packet(family=pkt.family, proto=6, src=pkt.dst, dst=pkt.src, sport=pkt.dport,
                 dport=pkt.sport, tcp_flags="SA", local=True)
    return Reply(kind="syn-ack", src=pkt.dst, dst=pkt.src, packet=out,
                 reason=reason or "the listening socket accepts the connection attempt")


def echo_reply(pkt: Packet) -> Reply | None:
    """The ICMP / ICMPv6 echo reply the kernel sends for an echo request to a local address."""
    if pkt.src is None:
        return None
    v4 = pkt.family is Family.IPV4
    out = Packet(family=pkt.family, proto=1 if v4 else 58, src=pkt.dst, dst=pkt.src,
                 icmp_type=0 if v4 else 129, icmp_code=0, icmp_id=pkt.icmp_id, local=True)
    return Reply(kind="icmp" if v4 else "icmpv6", src=pkt.dst, dst=pkt.src, type=out.icmp_type,
                 code=0, packet=out, reason="echo reply from the kernel's ICMP handler")


def icmp_error(pkt: Packet, kind: str, *, src: IPAddress | None, quoted: Packet | None = None,
               reason: str = "") -> Reply | None:
    """An ICMP / ICMPv6 error about ``pkt`` sent back to its source.

    ``src`` is the address the kernel sends it from (the packet's destination when it was for
    this host, else the address selected for the route back); ``quoted`` is the header the
    error quotes when it differs from ``pkt`` (e.g. translated back before DNAT).
    """
    if pkt.src is None:
        return None
    # RFC 1122 / 4443: never an ICMP error about an ICMP error
    if pkt.proto == 1 and pkt.icmp_type not in (0, 8, 13, 14, None):
        return None
    if pkt.proto == 58 and pkt.icmp_type is not None and pkt.icmp_type < 128:
        return None
    if pkt.src.is_multicast or pkt.src.is_unspecified:
        return None
    spec = ICMP_ERRORS[kind]
    v4 = pkt.family is Family.IPV4
    itype, icode = spec.v4 if v4 else spec.v6
    rsrc = src if src is not None else pkt.dst
    out = Packet(family=pkt.family, proto=1 if v4 else 58, src=rsrc, dst=pkt.src,
                 icmp_type=itype, icmp_code=icode, local=True,
                 tos=ICMP_ERROR_TOS if v4 else 0)
    text = reason or f"ICMP{'' if v4 else 'v6'} {kind.replace('-', ' ')}"
    text += f"; quotes {describe(quoted or pkt)}"
    if src is None:
        text += " (source address chosen by the kernel's route back; assumed the packet's destination)"
    return Reply(kind="icmp" if v4 else "icmpv6", src=rsrc, dst=pkt.src, type=itype, code=icode,
                 packet=out, reason=text)


def reject_reply(pkt: Packet, with_: str | None, *, icmp_src: IPAddress | None,
                 quoted: Packet | None = None) -> tuple[Reply | None, str]:
    """The answer a REJECT rule sends; returns (reply, normalised kind)."""
    kind = normalise_reject_with(with_)
    if kind == "tcp-reset":
        # nf_send_reset: the RST comes from the rejected packet's destination address
        return tcp_rst(pkt, reason="REJECT --reject-with tcp-reset"), kind
    if kind not in ICMP_ERRORS:
        return None, kind
    return icmp_error(pkt, kind, src=icmp_src, quoted=quoted,
                      reason=f"REJECT with {kind}"), kind
