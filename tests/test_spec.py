"""The one-line packet spec: examples, defaults, errors with columns, round trip."""

from __future__ import annotations

import ipaddress

import pytest

from journey.errors import PacketSpecError
from journey.model.family import Family
from journey.packets.spec import DEFAULT_SPORT, format_spec, parse_spec

EXAMPLES = [
    "in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:80 flags S",
    "local udp > 10.1.2.3:53",
    "in eth0 icmp 203.0.113.9 > 192.0.2.10 type 8",
    "in eth0 tcp [2001:db8::7]:40000 > [2001:db8::10]:22 flags S",
    "local uid 1000 tcp 10.0.0.1:5555 > 10.0.0.2:443 flags PA mark 0x10 tos 0x10 ttl 3",
    "in eth0 icmpv6 2001:db8::1 > 2001:db8::2 type echo-request",
    "in eth0 udp 10.0.0.9:5353 > 224.0.0.251:5353 mac 01:00:5e:00:00:fb vlan 10",
    "in eth0 proto 47 10.0.0.1 > 10.0.0.2",
    "in eth0 sctp 10.0.0.1:1 > 10.0.0.2:2 len 1500 df",
    "tcp 198.51.100.7 > 192.0.2.10:80",
    "in eth0 tcp 1.2.3.4:1>5.6.7.8:2 flags FA",
    "in eth0 icmp 1.2.3.4 > 5.6.7.8 type time-exceeded code 1 id 7",
    "in eth0 tcp 1.2.3.4:1 > 5.6.7.8:2 flags none badsum ihl 4 frag 8 mf smac 02:00:00:00:00:01",
]


@pytest.mark.parametrize("text", EXAMPLES)
def test_round_trip(text: str) -> None:
    pkt = parse_spec(text)
    again = parse_spec(format_spec(pkt))
    assert again == pkt
    assert format_spec(again) == format_spec(pkt)


def test_first_example_fields() -> None:
    p = parse_spec("in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:80 flags S")
    assert p.iif == "eth0" and not p.local
    assert p.proto == 6 and p.family is Family.IPV4
    assert p.src == ipaddress.ip_address("198.51.100.7") and p.sport == 40000
    assert p.dst == ipaddress.ip_address("192.0.2.10") and p.dport == 80
    assert p.tcp_flags == "S"


def test_defaults() -> None:
    p = parse_spec("local udp > 10.1.2.3:53")
    assert p.local and p.src is None and p.sport == DEFAULT_SPORT and p.dport == 53
    t = parse_spec("in eth0 tcp 1.2.3.4 > 5.6.7.8:80")
    assert t.tcp_flags == "S" and t.sport == DEFAULT_SPORT
    i = parse_spec("in eth0 icmp 1.2.3.4 > 5.6.7.8")
    assert (i.icmp_type, i.icmp_code) == (8, 0)
    i6 = parse_spec("in eth0 icmpv6 2001:db8::1 > 2001:db8::2")
    assert (i6.icmp_type, i6.family) == (128, Family.IPV6)


def test_ipv6_forms() -> None:
    p = parse_spec("in eth0 tcp [2001:db8::7]:40000 > [2001:db8::10]:22 flags S")
    assert p.family is Family.IPV6 and p.sport == 40000 and p.dport == 22
    bare = parse_spec("in eth0 icmpv6 2001:db8::7 > 2001:db8::10")
    assert bare.dst == ipaddress.ip_address("2001:db8::10") and bare.dport is None


def test_local_uid_and_options() -> None:
    p = parse_spec("local uid 1000 tcp > 10.0.0.2:443 flags PA mark 0x10 tos 16 ttl 3 df")
    assert p.uid == 1000 and p.mark == 0x10 and p.tos == 16 and p.ttl == 3 and p.df
    assert p.tcp_flags == "PA"


def test_icmp_type_names() -> None:
    assert parse_spec("in e icmp 1.1.1.1 > 2.2.2.2 type echo-reply").icmp_type == 0
    assert parse_spec("in e icmpv6 ::1 > ::2 type packet-too-big").icmp_type == 2


@pytest.mark.parametrize(("text", "column", "words"), [
    ("in eth0 tcp 1.2.3.4 > 5.6.7.8:80 flgs S", 34, ["unknown option 'flgs'", "flags"]),
    ("in eth0 tpc 1.2.3.4 > 5.6.7.8:80", 9, ["unknown protocol 'tpc'"]),
    ("in eth0 tcp 1.2.3.4 > 5.6.7.8", 23, ["destination port"]),
    ("in eth0 tcp 1.2.3.4 5.6.7.8:80", 21, ["expected '>'"]),
    ("in eth0 tcp 1.2.3.999 > 5.6.7.8:80", 13, ["bad source"]),
    ("in eth0 tcp 1.2.3.4:99999 > 5.6.7.8:80", 13, ["out of range"]),
    ("in eth0 icmp 2001:db8::1 > 2001:db8::2", 9, ["icmpv6"]),
    ("in eth0 tcp 1.2.3.4 > [2001:db8::1]:80", 13, ["different address families"]),
    ("in eth0 udp 1.2.3.4 > 5.6.7.8:53 flags S", 34, ["tcp only"]),
    ("in eth0 icmp 1.2.3.4:5 > 5.6.7.8", 14, ["no ports"]),
    ("in eth0 tcp 1.2.3.4 > 5.6.7.8:80 flags SX", 40, ["bad TCP flags"]),
    ("in eth0 tcp > 5.6.7.8:80", 15, ["needs a source address"]),
    ("in eth0 tcp 1.2.3.4 > 5.6.7.8:80 mac zz", 38, ["bad MAC"]),
    ("in eth0 tcp 1.2.3.4 > 5.6.7.8:80 ttl", 37, ["end of the spec"]),
    ("in eth0 tcp 1.2.3.4 > 5.6.7.8:80 ttl 1 ttl 2", 40, ["twice"]),
    ("in eth0 icmp 1.2.3.4 > 5.6.7.8 type bogus", 37, ["unknown ICMP type"]),
    ("", 1, ["empty"]),
])
def test_errors_point_at_the_word(text: str, column: int, words: list[str]) -> None:
    with pytest.raises(PacketSpecError) as info:
        parse_spec(text)
    err = info.value
    assert err.column == column, err.message
    assert err.spec == text
    for w in words:
        assert w in err.message
