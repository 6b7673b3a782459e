"""Capture indexing (journey.packets.pcap): link types, IPv6 extension headers, fragments,
truncation, broken files, cancellation, and the frame -> Packet conversion."""

from __future__ import annotations

import ipaddress
import struct
import threading
from pathlib import Path

import pytest

from journey.errors import CaptureError
from journey.model.family import Family
from journey.packets.pcap import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    dissect_text,
    frame_to_packet,
    guess_arrival,
    index_capture,
)

scapy_l2 = pytest.importorskip("scapy.layers.l2")
from scapy.layers.inet import ICMP, IP, TCP, UDP  # noqa: E402
from scapy.layers.inet6 import (  # noqa: E402
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Dot1Q, Ether  # noqa: E402
from scapy.utils import PcapNgWriter  # noqa: E402


def E() -> Ether:
    return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def _write(path: Path, pkts: list[object], linktype: int, snaplen: int = 65535) -> Path:
    """A pcap of ``pkts``; frames longer than ``snaplen`` are cut (caplen < wirelen)."""
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype))
        for n, p in enumerate(pkts):
            raw = bytes(p)  # type: ignore[call-overload]
            cut = raw[:snaplen]
            f.write(struct.pack("<IIII", 1_700_000_000 + n, 0, len(cut), len(raw)) + cut)
    return path


V4_TCP = IP(src="198.51.100.7", dst="192.0.2.10", ttl=61, tos=0x10, flags="DF") / TCP(sport=40000, dport=80, flags="S")
V4_UDP = IP(src="10.0.0.5", dst="10.0.0.1") / UDP(sport=5353, dport=53)
V4_ICMP = IP(src="10.0.0.5", dst="10.0.0.1") / ICMP(type=8, id=77, seq=1)
V6_TCP = IPv6(src="2001:db8::7", dst="2001:db8::10", hlim=50) / TCP(sport=1234, dport=443, flags="PA") / b"data"
V6_ICMP = IPv6(src="fd99::2", dst="fd99::1") / ICMPv6EchoRequest(id=9)


def test_ethernet_vlan_and_fields(tmp_path: Path) -> None:
    pkts = [E() / V4_TCP, E() / Dot1Q(vlan=42) / V4_UDP, E() / V4_ICMP,
            E() / V6_TCP, E() / V6_ICMP]
    cap = index_capture(_write(tmp_path / "e.pcap", pkts, LINKTYPE_ETHERNET))
    assert cap.complete and cap.format == "pcap" and cap.linktypes == (LINKTYPE_ETHERNET,)
    f = cap.frames
    assert [x.no for x in f] == [1, 2, 3, 4, 5]
    assert (f[0].src, f[0].dst, f[0].proto, f[0].sport, f[0].dport) == ("198.51.100.7", "192.0.2.10", 6, 40000, 80)
    assert f[0].ttl == 61 and f[0].tos == 0x10 and f[0].df and f[0].info.startswith("40000 → 80 [S]")
    assert f[1].vlan == 42 and f[1].protocol == "udp" and f[1].dport == 53
    assert f[2].icmp_type == 8 and "echo-request" in f[2].info
    assert (f[3].family, f[3].src, f[3].ttl, f[3].tcp_flags) == (6, "2001:db8::7", 50, 0x18)
    assert f[4].protocol == "ipv6-icmp" and f[4].icmp_type == 128

    p = frame_to_packet(cap, f[0], iif="eth0")
    assert p.family is Family.IPV4 and p.tcp_flags == "S" and p.df and p.iif == "eth0"
    assert p.src == ipaddress.ip_address("198.51.100.7") and p.length == 40 and p.ttl == 61
    p2 = frame_to_packet(cap, f[2])
    assert p2.icmp_id == 77
    p3 = frame_to_packet(cap, f[4])
    assert p3.icmp_id == 9 and p3.family is Family.IPV6
    assert "TCP" in dissect_text(cap, f[0])


@pytest.mark.parametrize(("linktype", "wrap"), [
    (LINKTYPE_LINUX_SLL, lambda p: CookedLinux(proto=0x0800 if p.version == 4 else 0x86DD) / p),
    (LINKTYPE_LINUX_SLL2, lambda p: CookedLinuxV2(proto=0x0800 if p.version == 4 else 0x86DD) / p),
    (LINKTYPE_RAW, lambda p: p),
])
def test_other_link_types(tmp_path: Path, linktype: int, wrap: object) -> None:
    pkts = [wrap(V4_TCP), wrap(V6_TCP)]  # type: ignore[operator]
    cap = index_capture(_write(tmp_path / "l.pcap", pkts, linktype))
    assert [(x.family, x.src, x.dport) for x in cap.frames] == [(4, "198.51.100.7", 80), (6, "2001:db8::7", 443)]


def test_raw_ipv4_ipv6_link_types(tmp_path: Path) -> None:
    cap4 = index_capture(_write(tmp_path / "4.pcap", [V4_UDP], LINKTYPE_IPV4))
    cap6 = index_capture(_write(tmp_path / "6.pcap", [V6_ICMP], LINKTYPE_IPV6))
    assert cap4.frames[0].dport == 53 and cap6.frames[0].icmp_type == 128


def test_ipv6_extension_headers_and_fragments(tmp_path: Path) -> None:
    pkts = [
        E() / IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt()
        / IPv6ExtHdrRouting(addresses=["fd00::3"]) / UDP(sport=1, dport=2),
        E() / IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrFragment(offset=0, m=1, id=5) / UDP(sport=3, dport=4) / (b"x" * 64),
        E() / IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrFragment(offset=10, m=0, id=5, nh=17) / (b"y" * 16),
        E() / IP(src="1.1.1.1", dst="2.2.2.2", flags="MF", frag=0) / UDP(sport=5, dport=6) / (b"z" * 32),
        E() / IP(src="1.1.1.1", dst="2.2.2.2", frag=5, proto=17) / (b"z" * 16),
    ]
    f = index_capture(_write(tmp_path / "x.pcap", pkts, LINKTYPE_ETHERNET)).frames
    assert (f[0].proto, f[0].sport, f[0].dport) == (17, 1, 2)
    assert (f[1].proto, f[1].dport, f[1].mf, f[1].frag_off) == (17, 4, True, 0)
    assert (f[2].proto, f[2].sport, f[2].frag_off, f[2].mf) == (17, None, 80, False)
    assert (f[3].dport, f[3].mf) == (6, True)
    assert (f[4].sport, f[4].frag_off) == (None, 40) and "fragment off=40" in f[4].info


def test_truncated_frames(tmp_path: Path) -> None:
    cap = index_capture(_write(tmp_path / "t.pcap", [E() / V4_TCP, E() / V6_TCP, E() / V4_TCP], LINKTYPE_ETHERNET, snaplen=30))
    f = cap.frames
    assert f[0].family == 0 and "truncated IPv4" in f[0].note  # 30 bytes: not even the IP header
    with pytest.raises(CaptureError, match="not an IP packet"):
        frame_to_packet(cap, f[0])
    cap2 = index_capture(_write(tmp_path / "t2.pcap", [E() / V4_TCP], LINKTYPE_ETHERNET, snaplen=38))
    g = cap2.frames[0]
    assert g.src == "198.51.100.7" and g.sport == 40000 and g.note == "truncated"


def test_pcapng(tmp_path: Path) -> None:
    path = tmp_path / "n.pcapng"
    w = PcapNgWriter(str(path))
    for p in (E() / V4_TCP, E() / V6_ICMP):
        w.write(p)
    w.close()
    cap = index_capture(path)
    assert cap.format == "pcapng" and [x.protocol for x in cap.frames] == ["tcp", "ipv6-icmp"]
    assert frame_to_packet(cap, cap.frames[0]).dport == 80


def test_not_a_capture_and_cut_short(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_text("hello, this is not a capture file")
    with pytest.raises(CaptureError, match="not a pcap"):
        index_capture(bad)
    with pytest.raises(CaptureError):
        index_capture(tmp_path / "missing.pcap")
    good = _write(tmp_path / "g.pcap", [E() / V4_TCP] * 3, LINKTYPE_ETHERNET)
    data = good.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:-10])
    cap = index_capture(cut)
    assert len(cap.frames) == 2 and not cap.complete and "cut short" in (cap.problem or "")


def test_cancel_and_progress(tmp_path: Path) -> None:
    path = _write(tmp_path / "many.pcap", [E() / V4_UDP] * 50, LINKTYPE_ETHERNET)
    seen: list[tuple[int, int]] = []
    ev = threading.Event()
    ev.set()
    cap = index_capture(path, progress=lambda d, t: seen.append((d, t)), cancel=ev, progress_every=10)
    assert len(cap.frames) == 10 and not cap.complete and "cancelled" in (cap.problem or "")
    assert seen and seen[-1][0] == seen[-1][1]


def test_flow_and_guess_arrival(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from tui_fixtures import host_snapshot

    syn = E() / IP(src="198.51.100.7", dst="192.0.2.10") / TCP(sport=40000, dport=80, flags="S")
    synack = E() / IP(src="192.0.2.10", dst="198.51.100.7") / TCP(sport=80, dport=40000, flags="SA")
    other = E() / IP(src="10.0.0.5", dst="192.0.2.10") / TCP(sport=1, dport=80, flags="S")
    cap = index_capture(_write(tmp_path / "f.pcap", [syn, other, synack], LINKTYPE_ETHERNET))
    assert [f.no for f in cap.flow(cap.frames[0])] == [1, 3]
    snap = host_snapshot()
    g = guess_arrival(snap, frame_to_packet(cap, cap.frames[1]))
    assert g.iif == "eth1" and not g.local
    g2 = guess_arrival(snap, frame_to_packet(cap, cap.frames[2]))
    assert g2.local and g2.iif is None
    g3 = guess_arrival(snap, frame_to_packet(cap, cap.frames[0]))
    assert g3.iif == "eth0" and "destination" in g3.reason


def test_pcap_nanosecond_big_endian(tmp_path: Path) -> None:
    raw = bytes(E() / V4_UDP)
    path = tmp_path / "be.pcap"
    with path.open("wb") as f:
        f.write(struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1))
        f.write(struct.pack(">IIII", 10, 500_000_000, len(raw), len(raw)) + raw)
    fr = index_capture(path).frames[0]
    assert fr.time == pytest.approx(10.5) and fr.dport == 53
