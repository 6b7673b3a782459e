"""The packet the simulation follows: the header fields the kernel decides on, as one value.

Pure data; no I/O, no scapy. Crafting from a spec lives in ``journey.packets.spec``; dissecting
capture frames in ``journey.packets.pcap``. Engine stages produce new Packets with
``dataclasses.replace`` and record the differences as ``Change`` values.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields

from journey.model.family import Family, IPAddress


class Proto(enum.IntEnum):
    """IP protocol numbers the engine knows by name."""

    ICMP = 1
    TCP = 6
    UDP = 17
    GRE = 47
    ESP = 50
    ICMPV6 = 58
    SCTP = 132
    UDPLITE = 136


PROTO_NAMES: dict[int, str] = {
    0: "all",
    1: "icmp",
    2: "igmp",
    4: "ipip",
    6: "tcp",
    17: "udp",
    41: "ipv6",
    47: "gre",
    50: "esp",
    51: "ah",
    58: "ipv6-icmp",
    132: "sctp",
    136: "udplite",
}


def proto_name(proto: int) -> str:
    """Name as iptables and /etc/protocols spell it (``ipv6-icmp`` for 58)."""
    return PROTO_NAMES.get(proto, str(proto))


# TCP flag letters in the order tcpdump prints them.
TCP_FLAG_BITS: dict[str, int] = {
    "F": 0x01,
    "S": 0x02,
    "R": 0x04,
    "P": 0x08,
    "A": 0x10,
    "U": 0x20,
    "E": 0x40,
    "C": 0x80,
}


@dataclass(frozen=True, slots=True)
class Packet:
    """An IP packet as seen at one point of its journey.

    ``iif`` names the interface it arrives on (ingress); ``local`` marks a packet sent by a
    local process (``uid`` its owner). ``src`` may be None only for a local packet whose
    source the kernel picks.
    """

    family: Family
    proto: int
    dst: IPAddress
    src: IPAddress | None = None
    sport: int | None = None
    dport: int | None = None
    tcp_flags: str = ""  # letters of TCP_FLAG_BITS, e.g. "S", "SA", "PA"
    icmp_type: int | None = None
    icmp_code: int | None = None
    icmp_id: int | None = None
    ttl: int = 64  # hop limit for IPv6
    tos: int = 0  # traffic class for IPv6
    mark: int = 0
    length: int | None = None  # total IP length; None = headers only
    df: bool = False
    frag_offset: int = 0  # in bytes; non-zero = a non-first fragment
    more_fragments: bool = False
    iif: str | None = None
    local: bool = False
    uid: int | None = None
    src_mac: str | None = None
    dst_mac: str | None = None
    vlan: int | None = None
    payload: bytes = b""
    checksum_ok: bool | None = None  # None = unknown (crafted), False = bad IP header checksum
    ihl: int = 5  # IPv4 header length in 32-bit words
    version: int | None = None  # IP version field; None = matches family

    @property
    def flag_bits(self) -> int:
        bits = 0
        for ch in self.tcp_flags:
            bits |= TCP_FLAG_BITS.get(ch, 0)
        return bits

    @property
    def ip_length(self) -> int:
        """Total length in bytes (headers + payload) when not given explicitly."""
        if self.length is not None:
            return self.length
        l3 = 20 if self.family is Family.IPV4 else 40
        l4 = {6: 20, 17: 8, 1: 8, 58: 8, 132: 12}.get(self.proto, 0)
        return l3 + l4 + len(self.payload)

    def diff(self, other: Packet) -> list[tuple[str, object, object]]:
        """Fields that differ between self (old) and other (new), as (name, old, new)."""
        out: list[tuple[str, object, object]] = []
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if a != b:
                out.append((f.name, a, b))
        return out
