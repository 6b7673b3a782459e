"""Pure tests of the conntrack model: states, lookups in both directions, commit, NAT of later packets."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import pytest

from journey.engine.conntrack import (
    CtState,
    ct_apply_nat,
    ct_commit,
    ct_host_reply,
    ct_lookup,
    entry_has_nat,
    nat_clash,
    packet_tuple,
)
from journey.engine.netfilter import Hook
from journey.model.family import Family
from journey.model.snapshot import ConntrackEntry, CtTuple
from tests.test_netfilter import P, make_snap

A = ipaddress.ip_address


@pytest.mark.parametrize(("flags", "state"), [
    ("S", CtState.NEW),
    ("A", CtState.NEW),  # loose pickup
    ("PA", CtState.NEW),
    ("SF", CtState.INVALID),
    ("", CtState.INVALID),
    ("F", CtState.INVALID),
    ("FA", CtState.INVALID),
    ("R", CtState.INVALID),
    ("RA", CtState.INVALID),
    ("SA", CtState.INVALID),
    ("SR", CtState.INVALID),
])
def test_tcp_without_entry(flags: str, state: CtState) -> None:
    v = ct_lookup(make_snap(), (), P(flags=flags))
    assert v.state is state, v.reason


def test_loose_pickup_reason_and_sysctl() -> None:
    v = ct_lookup(make_snap(), (), P(flags="A"))
    assert "nf_conntrack_tcp_loose=1" in v.reason and v.tcp_state == "ESTABLISHED"
    assert "empty" in v.reason and v.uncertain  # the snapshot's table was empty
    strict = make_snap(sysctls={"net.netfilter.nf_conntrack_tcp_loose": "0"})
    assert ct_lookup(strict, (), P(flags="A")).state is CtState.INVALID


def test_tcp_handshake_states_through_commit() -> None:
    snap = make_snap()
    syn = P()
    v = ct_lookup(snap, (), syn)
    assert v.state is CtState.NEW and v.source == "new" and v.tcp_state == "SYN_SENT"
    flows = ct_commit(v, syn, syn, None, ())
    assert flows[0].tcp_state == "SYN_SENT" and "UNREPLIED" in flows[0].status
    synack = P(src="192.0.2.1", dst="192.0.2.7", sport=80, dport=40000, flags="SA")
    v2 = ct_lookup(snap, flows, synack)
    assert v2.state is CtState.ESTABLISHED and v2.direction == "reply" and v2.tcp_state == "SYN_RECV"
    flows = ct_commit(v2, synack, synack, None, flows)
    assert "SEEN_REPLY" in flows[0].status and "UNREPLIED" not in flows[0].status
    ack = P(flags="A")
    v3 = ct_lookup(snap, flows, ack)
    assert v3.state is CtState.ESTABLISHED and v3.direction == "original"
    flows = ct_commit(v3, ack, ack, None, flows)
    assert flows[0].tcp_state == "ESTABLISHED" and "ASSURED" in flows[0].status
    assert len(flows) == 1
    # an ACK before the SYN-ACK is an invalid transition
    early = ct_lookup(snap, ct_commit(v, syn, syn, None, ()), ack)
    assert early.state is CtState.INVALID


def _entry(state: str | None = "ESTABLISHED", proto: int = 6, status: tuple[str, ...] = ("ASSURED",),
           reply_src: str = "192.0.2.1", reply_sport: int = 80) -> ConntrackEntry:
    return ConntrackEntry(
        family=Family.IPV4, proto=proto,
        orig=CtTuple(A("192.0.2.7"), A("192.0.2.1"), 40000, 80),
        reply=CtTuple(A(reply_src), A("192.0.2.7"), reply_sport, 40000),
        status=status, tcp_state=state)


def test_snapshot_entry_lookup_both_directions() -> None:
    snap = make_snap(conntrack=(_entry(),))
    v = ct_lookup(snap, (), P(flags="A"))
    assert v.state is CtState.ESTABLISHED and v.source == "snapshot" and v.direction == "original"
    r = ct_lookup(snap, (), P(src="192.0.2.1", dst="192.0.2.7", sport=80, dport=40000, flags="A"))
    assert r.state is CtState.ESTABLISHED and r.direction == "reply"
    # flows of this run shadow the snapshot
    newer = replace(_entry(), mark=7)
    assert ct_lookup(snap, (newer,), P(flags="A")).mark == 7
    # another zone does not match
    assert ct_lookup(snap, (), P(flags="A"), zone=3).source == "new"


def test_syn_reopens_time_wait() -> None:
    snap = make_snap(conntrack=(_entry("TIME_WAIT"),))
    v = ct_lookup(snap, (), P())
    assert v.state is CtState.NEW and v.source == "new" and "TIME_WAIT" in v.reason


def test_udp_and_icmp() -> None:
    snap = make_snap()
    q = P(proto=17, sport=5353, dport=53)
    v = ct_lookup(snap, (), q)
    assert v.state is CtState.NEW
    flows = ct_commit(v, q, q, None, ())
    again = ct_lookup(snap, flows, q)
    assert again.state is CtState.NEW and again.source == "flow"  # no reply yet
    ans = P(src="192.0.2.1", dst="192.0.2.7", proto=17, sport=53, dport=5353)
    ar = ct_lookup(snap, flows, ans)
    assert ar.state is CtState.ESTABLISHED and ar.direction == "reply"
    flows = ct_commit(ar, ans, ans, None, flows)
    assert ct_lookup(snap, flows, q).state is CtState.ESTABLISHED
    echo = P(proto=1, icmp_type=8, icmp_code=0, icmp_id=9)
    ev = ct_lookup(snap, (), echo)
    assert ev.state is CtState.NEW
    flows = ct_commit(ev, echo, echo, None, ())
    rep = P(src="192.0.2.1", dst="192.0.2.7", proto=1, icmp_type=0, icmp_code=0, icmp_id=9)
    assert ct_lookup(snap, flows, rep).state is CtState.ESTABLISHED
    assert ct_lookup(snap, (), rep).state is CtState.INVALID
    assert ct_lookup(snap, flows, replace(rep, icmp_id=10)).state is CtState.INVALID


def test_icmp_reply_type_inferred_for_snapshot_entries() -> None:
    e = ConntrackEntry(Family.IPV4, 1, CtTuple(A("192.0.2.1"), A("192.0.2.7"), icmp_type=8, icmp_code=0, icmp_id=5),
                       CtTuple(A("192.0.2.7"), A("192.0.2.1"), icmp_id=5))
    snap = make_snap(conntrack=(e,))
    rep = P(src="192.0.2.7", dst="192.0.2.1", proto=1, icmp_type=0, icmp_code=0, icmp_id=5)
    assert ct_lookup(snap, (), rep).direction == "reply"


def _quoted(src: str, dst: str, proto: int, sport: int, dport: int) -> bytes:
    hdr = bytes([0x45, 0, 0, 40, 0, 0, 0, 0, 64, proto, 0, 0]) + A(src).packed + A(dst).packed
    return hdr + sport.to_bytes(2, "big") + dport.to_bytes(2, "big") + bytes(4)


def test_icmp_error_related_via_quoted_header() -> None:
    snap = make_snap(conntrack=(_entry(),))
    err = P(src="192.0.2.1", dst="192.0.2.7", proto=1, icmp_type=3, icmp_code=3,
            payload=_quoted("192.0.2.7", "192.0.2.1", 6, 40000, 80))
    v = ct_lookup(snap, (), err)
    assert v.state is CtState.RELATED and v.direction == "reply" and not v.uncertain
    other = replace(err, payload=_quoted("192.0.2.7", "192.0.2.1", 6, 40001, 80))
    assert ct_lookup(snap, (), other).state is CtState.INVALID
    bare = replace(err, payload=b"")
    guess = ct_lookup(snap, (), bare)
    assert guess.state is CtState.RELATED and guess.uncertain


def test_icmpv6_nd_untracked() -> None:
    ns = P(src="2001:db8::7", dst="ff02::1:ff00:1", proto=58, icmp_type=135, icmp_code=0)
    v = ct_lookup(make_snap(), (), ns)
    assert v.state is CtState.UNTRACKED
    echo = replace(ns, dst=A("2001:db8::1"), icmp_type=128, icmp_id=1)
    assert ct_lookup(make_snap(), (), echo).state is CtState.NEW


def test_commit_reply_tuple_reflects_nat_and_apply_nat() -> None:
    snap = make_snap()
    syn = P()
    v = ct_lookup(snap, (), syn)
    after = replace(syn, dst=A("10.0.0.5"), dport=8080, src=A("198.51.100.1"), sport=1024)
    flows = ct_commit(v, syn, after, None, ())
    e = flows[0]
    assert e.orig == packet_tuple(syn)
    assert (e.reply.src, e.reply.sport, e.reply.dst, e.reply.dport) == (
        A("10.0.0.5"), 8080, A("198.51.100.1"), 1024)
    assert entry_has_nat(e) == (True, True)
    # original direction, second packet
    v2 = ct_lookup(snap, flows, syn)
    p, ch = ct_apply_nat(v2, syn, Hook.PREROUTING)
    assert (p.dst, p.dport, p.src) == (A("10.0.0.5"), 8080, A("192.0.2.7"))
    assert [c.field for c in ch] == ["dst", "dport"]
    p, ch = ct_apply_nat(v2, p, Hook.POSTROUTING)
    assert (p.src, p.sport) == (A("198.51.100.1"), 1024)
    # reply direction
    rep = P(src="10.0.0.5", dst="198.51.100.1", sport=8080, dport=1024, flags="SA")
    v3 = ct_lookup(snap, flows, rep)
    assert v3.direction == "reply"
    p, _ = ct_apply_nat(v3, rep, Hook.PREROUTING)
    assert (p.dst, p.dport) == (A("192.0.2.7"), 40000)
    p, _ = ct_apply_nat(v3, p, Hook.POSTROUTING)
    assert (p.src, p.sport) == (A("192.0.2.1"), 80)
    # idempotent
    assert ct_apply_nat(v3, p, Hook.POSTROUTING)[1] == []


def test_invalid_untracked_related_do_not_commit() -> None:
    snap = make_snap()
    bad = P(flags="SF")
    v = ct_lookup(snap, (), bad)
    assert ct_commit(v, bad, bad, None, ()) == ()


def test_empty_snapshot_table_is_explained() -> None:
    v = ct_lookup(make_snap(), (), P(proto=17, dport=53))
    assert "empty" in v.reason
    full = make_snap(conntrack=(_entry(),))
    assert "empty" not in ct_lookup(full, (), P(proto=17, dport=53)).reason


def test_rst_answering_syn_deletes_the_entry() -> None:
    snap = make_snap()
    syn = P()
    flows = ct_commit(ct_lookup(snap, (), syn), syn, syn, None, ())
    rst = P(src="192.0.2.1", dst="192.0.2.7", sport=80, dport=40000, flags="RA")
    v = ct_lookup(snap, flows, rst)
    assert v.state is CtState.ESTABLISHED and v.tcp_state == "CLOSE"
    assert ct_commit(v, rst, rst, None, flows) == ()


# -- status as the rules see it, and the stack's own answers ------------------------------------

def test_first_reply_sets_seen_reply_before_the_rules() -> None:
    snap = make_snap()
    syn = P()
    flows = ct_commit(ct_lookup(snap, (), syn), syn, syn, None, ())
    synack = P(src="192.0.2.1", dst="192.0.2.7", sport=80, dport=40000, flags="SA")
    v = ct_lookup(snap, flows, synack)
    # nf_conntrack_in sets SEEN_REPLY for a reply-direction packet before any rule runs
    assert "SEEN_REPLY" in v.status and "UNREPLIED" not in v.status
    assert "UNREPLIED" in flows[0].status  # the stored entry changes only at commit


def test_assured_needs_a_reply_seen_before() -> None:
    snap = make_snap()
    ack = P(flags="A")  # a picked-up connection (loose): ESTABLISHED without a reply
    flows = ct_commit(ct_lookup(snap, (), ack), ack, ack, None, ())
    again = ct_lookup(snap, flows, ack)
    assert "ASSURED" not in again.status
    back = P(src="192.0.2.1", dst="192.0.2.7", sport=80, dport=40000, flags="A")
    v = ct_lookup(snap, flows, back)
    assert "SEEN_REPLY" in v.status and "ASSURED" not in v.status
    flows = ct_commit(v, back, back, None, flows)
    assert "ASSURED" in ct_lookup(snap, flows, ack).status


def test_host_syn_ack_moves_the_entry_to_syn_recv() -> None:
    snap = make_snap()
    syn = P(src="192.0.2.7", dst="192.0.2.1")
    flows = ct_commit(ct_lookup(snap, (), syn), syn, syn, None, ())
    synack = P(src="192.0.2.1", dst="192.0.2.7", sport=80, dport=40000, flags="SA", local=True)
    new, note = ct_host_reply(snap, flows, synack)
    assert new[0].tcp_state == "SYN_RECV" and "SEEN_REPLY" in new[0].status
    assert note is not None and "SYN_SENT -> SYN_RECV" in note and "+SEEN_REPLY" in note
    ack = ct_lookup(snap, new, P(flags="A"))
    assert ack.state is CtState.ESTABLISHED and ack.tcp_state == "ESTABLISHED"


def test_host_rst_answering_a_syn_deletes_the_entry() -> None:
    snap = make_snap()
    syn = P()
    flows = ct_commit(ct_lookup(snap, (), syn), syn, syn, None, ())
    rst = P(src="192.0.2.1", dst="192.0.2.7", sport=80, dport=40000, flags="RA", local=True)
    new, note = ct_host_reply(snap, flows, rst)
    assert new == () and note is not None and "deletes" in note


def test_host_reply_without_an_entry_changes_nothing() -> None:
    snap = make_snap()
    synack = P(src="192.0.2.1", dst="192.0.2.7", sport=80, dport=40000, flags="SA", local=True)
    assert ct_host_reply(snap, (), synack) == ((), None)
    err = P(src="192.0.2.1", dst="192.0.2.7", proto=1, icmp_type=3, icmp_code=3, local=True)
    syn = P()
    flows = ct_commit(ct_lookup(snap, (), syn), syn, syn, None, ())
    assert ct_host_reply(snap, flows, err) == (flows, None)  # RELATED: no state change


def _snat_entry(sport: int = 5000, new_sport: int = 61000, dst: str = "192.0.2.10") -> ConntrackEntry:
    return ConntrackEntry(
        family=Family.IPV4, proto=17,
        orig=CtTuple(src=A("198.51.100.7"), dst=A(dst), sport=sport, dport=53),
        reply=CtTuple(src=A(dst), dst=A("10.2.0.1"), sport=53, dport=new_sport),
        status=("CONFIRMED", "UNREPLIED", "SRC_NAT"))


def test_icmp_error_guess_follows_snat() -> None:
    """An ICMP error without a quoted header goes to the NATed source of the flow's packets
    (the reply tuple's destination), not the pre-NAT client: kernel q-nat-icmp packet 4."""
    flows = (_snat_entry(new_sport=5000),)
    err = P(src="10.2.0.2", dst="10.2.0.1", proto=1, icmp_type=11, icmp_code=0)
    v = ct_lookup(make_snap(), flows, err)
    assert v.state is CtState.RELATED and v.direction == "reply" and v.uncertain
    assert v.entry == flows[0]


def test_nat_clash_finds_a_taken_reply_tuple() -> None:
    """SNAT to one address:port: a second flow to the same server would get the first flow's
    reply tuple (kernel q-nat-snat-collision); to another server it does not clash."""
    flows = (_snat_entry(),)
    snap = make_snap()
    pkt = P(src="198.51.100.9", dst="192.0.2.10", proto=17, sport=5000, dport=53)
    v = ct_lookup(snap, flows, pkt)
    assert v.nat_pending
    after = replace(pkt, src=A("10.2.0.1"), sport=61000)
    assert nat_clash(snap, flows, v, pkt, after) == flows[0]
    other = replace(pkt, dst=A("192.0.2.11"))
    v2 = ct_lookup(snap, flows, other)
    assert nat_clash(snap, flows, v2, other, replace(other, src=A("10.2.0.1"), sport=61000)) is None
    # the flow's own entry never clashes with itself
    own = P(src="198.51.100.7", dst="192.0.2.10", proto=17, sport=5000, dport=53)
    assert nat_clash(snap, (), ct_lookup(snap, (), own), own,
                     replace(own, src=A("10.2.0.1"), sport=61000)) is None
