"""Native nftables rulesets against the kernel: scenarios built in namespaces (prefix "nt"),
real packets sent from neighbour namespaces, observed with ``nft monitor trace``, counters and
conntrack, compared field by field with ``journey.engine.simulate`` on a snapshot journey's own
collector took *before* the trace table was added.

Uses the differential harness of ``tests/kernel`` (``harness.run_scenario`` + ``observe``):
frames are built with scapy and written on AF_PACKET sockets in the neighbour namespaces.
Rulesets: the Debian examples shipped with nftables (workstation.nft, nat.nft with its
addresses moved into the lab), a fail2ban-style ruleset (what fail2ban's nftables action
creates with its defaults, as in fail2ban config/action.d/nftables.conf: ``inet f2b-table``,
an interval set ``addr-set-<jail>``, ``tcp dport { ssh } ip saddr @set reject`` in ``f2b-chain`` at
input priority -1),
iptables-nft and native tables on the same hooks, inet tables with IPv4 and IPv6, sets / maps /
vmaps / concatenations, NAT through maps, and fib rp filtering. Each test prints its agreement
figure; any disagreement fails it.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.kernel import harness
from tests.kernel.harness import K, Link, Listener, Scenario, Send
from tests.kernel.observe import compare, interpret
from tests.kernelutil import require_kernel

pytestmark = pytest.mark.kernel

EXAMPLES = Path("/usr/share/doc/nftables/examples")
H0 = Link("h0", ("10.1.0.1/24", "fd01::1/64"), ("10.1.0.2", "10.1.0.3", "fd01::2"))
H1 = Link("h1", ("10.2.0.1/24", "fd02::1/64"), ("10.2.0.2", "fd02::2"))
SETUP = """
sysctl -qw net.ipv4.ip_forward=1
sysctl -qw net.ipv6.conf.all.forwarding=1
"""
LISTEN = (Listener("tcp", "0.0.0.0", 22), Listener("tcp", "::", 2222), Listener("udp", "0.0.0.0", 53))


def _example(name: str) -> str:
    text = (EXAMPLES / name).read_text()
    return "\n".join(ln for ln in text.splitlines() if ln.strip() != "flush ruleset") + "\n"


def debian_examples() -> Scenario:
    nat = (_example("nat.nft")
           .replace("1000 : 1.1.1.1,", "1000 : 10.2.0.2,").replace("2.2.2.2,", "10.2.0.2,")
           .replace("3.3.3.3}", "10.2.0.2}").replace("192.168.1.1 : 1.1.1.1", "10.1.0.2 : 10.2.0.1")
           .replace("192.168.2.2 : 2.2.2.2", "10.1.0.3 : 10.2.0.1")
           .replace("priority 0;\n\t\t#Thanks", "priority -100;\n\t\t#Thanks")
           .replace("type nat hook postrouting priority 0;", "type nat hook postrouting priority 100;"))
    return Scenario(
        "nt-debian-examples", "Debian's workstation.nft (inet filter input) + nat.nft (dnat / snat "
        "through anonymous maps)", (H0, H1), setup=SETUP, listeners=LISTEN,
        nft=_example("workstation.nft") + nat,
        packets=(
            Send("in h0 tcp 10.1.0.2:40000 > 10.1.0.1:22", K("dropped")),
            Send("in h0 icmpv6 fd01::2 > fd01::1 type echo-request id 7", K("delivered")),
            Send("in h0 tcp 10.1.0.2:40001 > 10.1.0.1:1000", K("forwarded", "h1", dst="10.2.0.2",
                                                               dport=1234, src="10.2.0.1")),
            Send("in h0 udp 10.1.0.2:40002 > 10.1.0.1:2000", K("dropped")),
            Send("in h0 tcp 10.1.0.3:40003 > 10.1.0.1:3000", K("forwarded", "h1", dport=3456)),
        ))


FAIL2BAN = """
table inet f2b-table {
    set addr-set-sshd {
        type ipv4_addr
        flags interval
        elements = { 10.1.0.3 }
    }
    chain f2b-chain {
        type filter hook input priority -1; policy accept;
        tcp dport { ssh } ip saddr @addr-set-sshd reject
    }
}
"""


def fail2ban() -> Scenario:
    return Scenario(
        "nt-fail2ban", "fail2ban nftables-multiport action: a banned address is rejected",
        (H0, H1), setup=SETUP, listeners=LISTEN, nft=FAIL2BAN,
        packets=(
            Send("in h0 tcp 10.1.0.3:40000 > 10.1.0.1:22", K("rejected", replies=("icmp 3/3",))),
            Send("in h0 tcp 10.1.0.2:40000 > 10.1.0.1:22", K("delivered")),
        ))


MIXED_IPT = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp -m tcp --dport 5555 -j DROP
-A INPUT -p tcp -m multiport --dports 7000,7001 -j REJECT --reject-with tcp-reset
-A FORWARD -s 10.1.0.3/32 -j DROP
COMMIT
"""
MIXED_NFT = """
table inet native {
    chain in_early {
        type filter hook input priority -5; policy accept;
        tcp dport 5555 counter accept
        tcp dport 6666 drop
        meta l4proto tcp tcp dport 7000 counter
    }
    chain in_late {
        type filter hook input priority 10; policy accept;
        tcp dport 22 ip6 saddr fd01::/64 drop
    }
    chain fwd_c {
        type filter hook forward priority 5; policy accept;
        ip saddr 10.1.0.2 ip daddr 10.2.0.2 accept
        ip6 daddr fd02::2 tcp dport 80 reject with icmpv6 admin-prohibited
    }
}
"""


def mixed() -> Scenario:
    return Scenario(
        "nt-mixed", "iptables-nft and a native inet table on the same hooks (accept in one does "
        "not stop the other)", (H0, H1), setup=SETUP, listeners=LISTEN, iptables=MIXED_IPT,
        nft=MIXED_NFT,
        packets=(
            Send("in h0 tcp 10.1.0.2:40000 > 10.1.0.1:5555", K("dropped")),
            Send("in h0 tcp 10.1.0.2:40001 > 10.1.0.1:6666", K("dropped")),
            Send("in h0 tcp 10.1.0.2:40002 > 10.1.0.1:7000", K("rejected")),
            Send("in h0 tcp 10.1.0.2:40003 > 10.1.0.1:22", K("delivered")),
            Send("in h0 tcp [fd01::2]:40004 > [fd01::1]:22", K("dropped")),
            Send("in h0 tcp 10.1.0.3:40005 > 10.2.0.2:80", K("dropped")),
            Send("in h0 tcp 10.1.0.2:40006 > 10.2.0.2:80", K("forwarded", "h1")),
            Send("in h0 tcp [fd01::2]:40007 > [fd02::2]:80", K("rejected")),
        ))


SETS_NFT = """
table inet sm {
    set trusted { type ipv4_addr; flags interval; elements = { 10.1.0.2/32, 192.0.2.0/24 } }
    set svc6 { type ipv6_addr . inet_service; elements = { fd01::2 . 2222 } }
    map portv { type inet_service : verdict; elements = { 23 : drop, 24 : jump reject_it } }
    map natmap { type inet_service : ipv4_addr . inet_service; elements = { 8080 : 10.2.0.2 . 80 } }
    chain rpf {
        type filter hook prerouting priority mangle; policy accept;
        fib saddr . iif oif missing counter drop
    }
    chain pre_nat {
        type nat hook prerouting priority dstnat; policy accept;
        dnat ip to tcp dport map @natmap
    }
    chain post_nat {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "h1" masquerade
    }
    chain reject_it { reject with icmpx admin-prohibited; }
    chain input {
        type filter hook input priority filter; policy drop;
        ct state established,related accept
        tcp dport vmap @portv
        ip saddr @trusted tcp dport { 22, 80-90 } accept
        ip6 saddr . tcp dport @svc6 accept
        meta l4proto ipv6-icmp accept
        udp dport 53 ip saddr != @trusted drop
        udp dport 53 accept
    }
}
"""


def sets_maps() -> Scenario:
    return Scenario(
        "nt-sets-maps-fib", "inet table: interval / concatenated sets, vmap with jump, DNAT "
        "through a concatenated map, masquerade, fib rp filtering, IPv4 and IPv6",
        (H0, H1), setup=SETUP, listeners=LISTEN, nft=SETS_NFT,
        packets=(
            Send("in h0 tcp 10.1.0.2:40000 > 10.1.0.1:22", K("delivered")),
            Send("in h0 tcp 10.1.0.3:40001 > 10.1.0.1:22", K("dropped")),
            Send("in h0 tcp 10.1.0.2:40002 > 10.1.0.1:23", K("dropped")),
            Send("in h0 tcp 10.1.0.2:40003 > 10.1.0.1:24", K("rejected", replies=("icmp 3/13",))),
            Send("in h0 tcp [fd01::2]:40004 > [fd01::1]:2222", K("delivered")),
            Send("in h0 udp 10.1.0.3:40005 > 10.1.0.1:53", K("dropped")),
            Send("in h0 udp 10.1.0.2:40006 > 10.1.0.1:53", K("delivered")),
            Send("in h0 udp 10.2.0.9:40007 > 10.1.0.1:53", K("dropped")),  # rp: 10.2/24 is on h1
            Send("in h0 tcp 10.1.0.2:40008 > 10.1.0.1:8080",
                 K("forwarded", "h1", dst="10.2.0.2", dport=80, src="10.2.0.1")),
        ))


SCENARIOS = [debian_examples, fail2ban, mixed, sets_maps]


def _wait_oper_up(lab: harness.Lab) -> None:
    """The harness waits for LOWER_UP; operstate follows a little later (link watch). The
    snapshot must see the links UP, so wait for ``state UP`` too before it is collected."""
    _orig_wait_up(lab)
    assert lab.host is not None
    names = {ln.host_if for ln in lab.sc.links}
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        out = lab.host.exec(["ip", "-o", "link", "show"]).stdout
        up = {m.group(1) for m in re.finditer(r"^\d+: (\w+)@\S+: .* state UP", out, re.M)}
        if names <= up:
            return
        time.sleep(0.02)


_orig_wait_up = harness.Lab._wait_up
_orig_rule_map = harness.Lab._rule_map


def _rule_map_native(lab: harness.Lab) -> None:
    """The harness labels a trace rule "nft" (iptables-nft) when iptables-save prints a table of
    that name; iptables-save also prints native tables named like iptables ones ("Table `nat'
    contains incompatible base-chains"). Label by what the scenario loaded with iptables."""
    _orig_rule_map(lab)
    loaded = {("ip", m.group(1)) for m in re.finditer(r"^\*(\w+)", lab.sc.iptables, re.M)}
    loaded |= {("ip6", m.group(1)) for m in re.finditer(r"^\*(\w+)", lab.sc.ip6tables, re.M)}
    for key, (backend, pos) in list(lab.nft_rules.items()):
        if backend == "nft" and (key[0], key[1]) not in loaded:
            lab.nft_rules[key] = ("native", pos)


@pytest.mark.parametrize("make", SCENARIOS, ids=[f.__name__ for f in SCENARIOS])
def test_nft_against_kernel(make: Any, monkeypatch: pytest.MonkeyPatch,
                            record_property: Any) -> None:
    require_kernel("ip", "nft", "iptables-restore", "iptables-save", "conntrack", "stdbuf")
    if not EXAMPLES.exists():
        pytest.skip("nftables examples not installed")
    monkeypatch.setattr(harness, "PREFIX", "nt")
    monkeypatch.setattr(harness.Lab, "_wait_up", _wait_oper_up)
    monkeypatch.setattr(harness.Lab, "_rule_map", _rule_map_native)
    from journey.engine.simulate import simulate

    sc = make()
    lab, raws = harness.run_scenario(sc)
    assert lab.snapshot is not None, lab.snapshot_error
    flows: tuple[Any, ...] = ()
    agree = 0
    problems: list[str] = []
    for raw in raws:
        obs = interpret(raw, lab)
        j = simulate(lab.snapshot, raw.packet, flows=flows, spec=raw.send.spec)
        flows = j.flows
        mism = compare(obs, j)
        if raw.send.expect.disposition and obs.disposition != raw.send.expect.disposition:
            problems.append(f"{raw.send.spec}: kernel {obs.disposition}, scenario expects "
                            f"{raw.send.expect.disposition} ({obs.summary()})")
        if mism:
            problems.append(f"{raw.send.spec}: " + "; ".join(m.text() for m in mism))
        else:
            agree += 1
    record_property("nft_agreement", f"{agree}/{len(raws)}")
    print(f"{sc.name}: engine agrees with the kernel on {agree}/{len(raws)} packets")
    assert not problems, "\n".join(problems)


def test_load_balancing_example_does_not_load_as_written() -> None:
    """KERNEL.md: a nat chain at priority -300 is refused by this kernel."""
    require_kernel("ip", "nft")
    from tests.kernelutil import Netns

    with Netns("nt") as ns:
        res = ns.exec(["nft", "-f", str(EXAMPLES / "load_balancing.nft")], check=False)
        assert res.returncode != 0
        assert re.search(r"Error", res.stderr)
