"""Native nftables rulesets against the kernel: scenarios built in namespaces (prefix "nb"),
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
figure (packets, and per compared field); any disagreement fails it.

Every Debian example that loads on this kernel and hooks IP traffic is proven: all-in-one.nft
(as shipped, includes inlined: inet/ip/ip6 skeletons, netdev ingress on lo, arp and bridge
tables, which routed packets never pass and the engine ignores), the ten per-family skeletons
(inet/ipv4/ipv6 filter, nat, mangle, raw) with rules added to their chains, sets_and_maps.nft,
ct_helpers.nft (the engine must mark the helper assignment uncertain), overview.nft (jumped to
from two base chains), netdev-ingress.nft plus device-bound netdev and inet ingress chains,
workstation.nft and nat.nft. Adaptations are stated in each scenario's docstring. secmark.nft
does not load here (no SELinux: "Could not process rule: No such file or directory") and
load_balancing.nft neither (see the last test).

firewalld: ``tests/data/nft/firewalld.nft`` is the ruleset firewalld 1.3.3 generated itself,
run by ``tests/data/nft/make_firewalld.sh`` in a throwaway network namespace inside a private
mount namespace (bind-mounted copies of /etc/firewalld and /run, a private D-Bus system bus);
the script checks that the root namespace's ruleset did not change. The test loads the saved
ruleset; firewalld itself is not needed at test time.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.kernel import harness
from tests.kernel.harness import K, Link, Listener, Scenario, Send
from tests.kernel.observe import applicable, compare, interpret
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


def _expand(name: str) -> str:
    """An example with its ``include "./x.nft"`` lines replaced by those files (``nft -f -``
    has no directory to resolve them against)."""
    out = []
    for ln in _example(name).splitlines():
        m = re.match(r'\s*include\s+"\./([^"]+)"', ln)
        out.append(_example(m.group(1)) if m else ln)
    return "\n".join(out) + "\n"


def all_in_one() -> Scenario:
    """all-in-one.nft as shipped (its includes inlined): empty base chains of every family on
    every hook (inet/ip/ip6 filter, nat, mangle route, raw; netdev ingress on lo; arp; bridge).
    Native tables named filter/nat/raw/mangle must not be taken for iptables-nft's."""
    return Scenario(
        "nb-all-in-one", "all-in-one.nft: skeleton chains of every family, policy accept",
        (H0, H1), setup=SETUP, listeners=LISTEN, nft=_expand("all-in-one.nft"),
        packets=(
            Send("in h0 tcp 10.1.0.2:40000 > 10.1.0.1:22", K("delivered", ct="NEW")),
            Send("in h0 tcp [fd01::2]:40001 > [fd01::1]:2222", K("delivered")),
            Send("in h0 udp 10.1.0.2:40002 > 10.1.0.1:9", K("rejected", replies=("icmp 3/3",))),
            Send("in h0 tcp 10.1.0.2:40003 > 10.2.0.2:80", K("forwarded", "h1", src="10.1.0.2")),
            Send("in h1 udp [fd02::2]:40004 > [fd01::2]:53", K("forwarded", "h0")),
            Send("in h0 icmp 10.1.0.2 > 10.1.0.1 type echo-request id 5",
                 K("delivered", replies=("icmp 0/0",))),
            Send("local tcp > 10.2.0.2:80", K("sent", "h1", src="10.2.0.1")),
            Send("local udp 10.1.0.1:40005 > 10.1.0.1:53", K("delivered")),
        ))


SKELETONS = ("inet-filter.nft", "inet-nat.nft", "ipv4-filter.nft", "ipv4-mangle.nft",
             "ipv4-nat.nft", "ipv4-raw.nft", "ipv6-filter.nft", "ipv6-mangle.nft",
             "ipv6-nat.nft", "ipv6-raw.nft")
# rules added to the shipped skeleton chains (the files themselves have none), one or two per
# table, so that each table decides something: drop in raw, dnat / redirect / masquerade / snat
# in the nat tables, reject in filter, a mark in the route-type mangle chains that re-routes
SKELETON_RULES = """
add rule ip raw prerouting ip saddr 10.1.0.3 tcp dport 23 drop
add rule ip6 raw prerouting tcp dport 23 counter drop
add rule inet nat prerouting ip daddr 10.1.0.1 tcp dport 8080 dnat ip to 10.2.0.2:80
add rule inet nat prerouting ip6 daddr fd01::1 tcp dport 8080 dnat ip6 to [fd02::2]:80
add rule ip nat prerouting tcp dport 8022 redirect to :22
add rule inet nat input ip saddr 10.1.0.3 tcp dport 22 snat ip to 10.1.0.77
add rule ip nat postrouting oifname "h1" masquerade
add rule ip6 nat postrouting oifname "h1" masquerade
add rule inet filter input ip6 saddr fd01::/64 tcp dport 2222 reject with tcp reset
add rule ip filter forward tcp dport 25 drop
add rule ip6 filter forward tcp dport 25 reject
add rule ip filter output udp dport 9 drop
add rule ip mangle output ip daddr 10.9.0.0/24 tcp dport 443 meta mark set 0x1
add rule ip6 mangle output meta mark set 0x2
"""
REROUTE = """
ip route add 10.9.0.0/24 via 10.1.0.2 dev h0
ip route add 10.9.0.0/24 via 10.2.0.2 dev h1 table 100
ip rule add fwmark 0x1 lookup 100 priority 100
"""


def skeletons() -> Scenario:
    """The ten per-family skeleton examples (inet-filter ... ipv6-raw) loaded together, with
    rules added to their chains: every table on its hook at its priority."""
    return Scenario(
        "nb-skeletons", "inet/ipv4/ipv6 filter, nat, mangle (route), raw skeletons with rules",
        (H0, H1), setup=SETUP + REROUTE, listeners=LISTEN,
        nft="".join(_example(n) for n in SKELETONS) + SKELETON_RULES,
        packets=(
            Send("in h0 tcp 10.1.0.3:40000 > 10.1.0.1:23", K("dropped")),
            Send("in h0 tcp [fd01::2]:40001 > [fd01::1]:23", K("dropped")),
            Send("in h0 tcp 10.1.0.2:40002 > 10.1.0.1:8080",
                 K("forwarded", "h1", dst="10.2.0.2", dport=80, src="10.2.0.1")),
            Send("in h0 tcp [fd01::2]:40003 > [fd01::1]:8080",
                 K("forwarded", "h1", dst="fd02::2", dport=80, src="fd02::1")),
            Send("in h0 tcp 10.1.0.2:40004 > 10.1.0.1:8022", K("delivered", dport=22)),
            Send("in h0 tcp 10.1.0.3:40005 > 10.1.0.1:22", K("delivered", src="10.1.0.77")),
            Send("in h0 tcp [fd01::2]:40006 > [fd01::1]:2222",
                 K("rejected", replies=("tcp-rst",))),
            Send("in h0 tcp 10.1.0.2:40007 > 10.2.0.2:25", K("dropped")),
            Send("in h0 tcp [fd01::2]:40008 > [fd02::2]:25",
                 K("rejected", replies=("icmpv6 1/4",))),
            Send("in h0 udp 10.1.0.2:40009 > 10.2.0.2:53", K("forwarded", "h1", src="10.2.0.1")),
            Send("local tcp > 10.9.0.5:443", K("sent", "h1", src="10.2.0.1", mark=1)),
            Send("local tcp > 10.9.0.5:80", K("sent", "h0", src="10.1.0.1")),
            Send("local udp > [fd02::2]:53", K("sent", "h1", mark=2)),
            Send("local udp > 10.2.0.2:9", K("dropped")),
        ))


def sets_and_maps_example() -> Scenario:
    """sets_and_maps.nft: its interfaces eth0..eth3 become h0, h1 and a veth pair x2/x3 made
    in the setup (nft refuses unknown interfaces); its leading ``delete table filter`` is
    removed (it fails when the table does not exist); the named set and the vmap it declares
    empty get elements (``add element``) so that every rule can match."""
    text = _example("sets_and_maps.nft").replace("delete table filter\n", "")
    for old, new in (("eth0", "h0"), ("eth1", "h1"), ("eth2", "x2"), ("eth3", "x3")):
        text = re.sub(rf"\b{old}\b", new, text)
    text += ("add element filter local_ifs { h0 }\n"
             "add element filter jump_map { h0 : jump input_1, h1 : jump input_2 }\n")
    return Scenario(
        "nb-sets-and-maps", "sets_and_maps.nft: iface_index sets, symbolic sets, vmap jumps",
        (H0, H1), setup=SETUP + "ip link add x2 type veth peer name x3\n", listeners=LISTEN,
        nft=text,
        packets=(
            Send("in h0 tcp 10.1.0.2:40000 > 10.1.0.1:22", K("delivered")),
            Send("in h1 udp 10.2.0.2:40001 > 10.1.0.1:53", K("delivered")),
            Send("in h0 tcp 10.1.0.2:40002 > 10.1.0.1:123", K("rejected", replies=("tcp-rst",))),
            Send("in h0 tcp [fd01::2]:40003 > [fd01::1]:2222", K("delivered")),
        ))


def ct_helpers() -> Scenario:
    """ct_helpers.nft as shipped: helpers assigned, then the input policy drops every new
    packet. The engine does not model helpers: it must say the assignment is uncertain."""
    return Scenario(
        "nb-ct-helpers", "ct_helpers.nft: ct helper objects assigned by rule and by map",
        (H0, H1), setup=SETUP, listeners=LISTEN, nft=_example("ct_helpers.nft"),
        packets=(
            Send("in h0 tcp 10.1.0.2:40000 > 10.1.0.1:21", K("dropped")),
            Send("in h0 udp 10.1.0.2:40001 > 10.1.0.1:69", K("dropped")),
            Send("in h0 udp [fd01::2]:40002 > [fd01::1]:5060", K("dropped")),
            Send("in h0 tcp 10.1.0.2:40003 > 10.1.0.1:22", K("dropped")),
            Send("in h0 tcp 10.1.0.2:40004 > 10.2.0.2:21", K("forwarded", "h1")),
            Send("local tcp > 10.2.0.2:21", K("sent", "h1")),
        ))


def overview() -> Scenario:
    """overview.nft: one regular chain of selector examples. Its addresses move into the lab
    (1.1.1.1 -> 10.1.0.2, 2.2.2.2 -> 10.1.0.1, 3.3.3.3 -> 10.2.0.2, 4.4.4.4 -> 10.1.0.1), its
    interfaces too (eth0/bond0 -> h0, eth1/bond1 -> h1: nft refuses unknown ones), and two base
    chains (input, forward) jump to it, since it hooks nothing by itself."""
    text = _example("overview.nft")
    for old, new in (("1.1.1.1", "10.1.0.2"), ("2.2.2.2", "10.1.0.1"), ("3.3.3.3", "10.2.0.2"),
                     ("4.4.4.4", "10.1.0.1"), ("eth0", "h0"), ("bond0", "h0"), ("eth1", "h1"),
                     ("bond1", "h1")):
        text = text.replace(old, new)
    text += """
table inet overview_test_table {
    chain in_hook { type filter hook input priority 0; jump overview_test_chain; }
    chain fwd_hook { type filter hook forward priority 0; jump overview_test_chain; }
}
"""
    return Scenario(
        "nb-overview", "overview.nft: addresses, ports, sets, interfaces, ct state, verdicts",
        (H0, H1), setup=SETUP, listeners=LISTEN, nft=text,
        packets=(
            Send("in h0 tcp 10.1.0.2:40000 > 10.1.0.1:123", K("dropped")),
            Send("in h0 udp 10.1.0.2:123 > 10.1.0.1:53", K("dropped")),
            Send("in h0 tcp 10.1.0.2:40001 > 10.2.0.2:22", K("dropped")),
            Send("in h0 tcp [fd01::2]:40002 > [fd01::1]:22", K("dropped")),
            Send("in h1 icmp 10.2.0.2 > 10.1.0.1 type echo-request id 3", K("dropped")),
        ))


NETDEV = """
table netdev nb_ingress {
    chain h0_in {
        type filter hook ingress device "h0" priority 0; policy accept;
        ip saddr 10.1.0.3 counter drop
        tcp dport 23 drop
        udp dport 53 meta mark set 0x5
    }
}
table inet nb_inet_ingress {
    chain h1_in {
        type filter hook ingress device "h1" priority -10; policy accept;
        ip6 saddr fd02::2 udp dport 9 drop
        tcp dport 23 counter
    }
}
"""


def netdev_ingress() -> Scenario:
    """netdev-ingress.nft (a chain on lo) plus a netdev chain on h0 and an inet ingress chain
    on h1: they run before IP processing, only for their device."""
    return Scenario(
        "nb-netdev-ingress", "netdev / inet ingress chains bound to devices",
        (H0, H1), setup=SETUP, listeners=LISTEN, nft=_example("netdev-ingress.nft") + NETDEV,
        packets=(
            Send("in h0 tcp 10.1.0.3:40000 > 10.1.0.1:22", K("dropped")),
            Send("in h0 tcp 10.1.0.2:40001 > 10.1.0.1:23", K("dropped")),
            Send("in h0 tcp 10.1.0.2:40002 > 10.1.0.1:22", K("delivered")),
            Send("in h0 udp 10.1.0.2:40003 > 10.1.0.1:53", K("delivered", mark=5)),
            Send("in h1 tcp 10.2.0.2:40004 > 10.1.0.1:23", K("rejected", replies=("tcp-rst",))),
            Send("in h1 udp [fd02::2]:40005 > [fd01::1]:9", K("dropped")),
            Send("in h1 udp 10.2.0.2:40006 > 10.1.0.1:53", K("delivered")),
            Send("local udp 10.1.0.1:40007 > 10.1.0.1:53", K("delivered")),
        ))


FIREWALLD = Path(__file__).parent / "data" / "nft" / "firewalld.nft"


def firewalld() -> Scenario:
    """The ruleset firewalld 1.3.3 itself generated (``tests/data/nft/make_firewalld.sh``:
    firewalld run in a throwaway namespace + private mount namespace and D-Bus): h0 in zone
    public (ssh, dhcpv6-client) with a port forward 8080 -> 10.2.0.2:80, h1 in zone external
    (ssh, masquerade). Loaded as saved (``nft -f``), no firewalld at test time."""
    return Scenario(
        "nb-firewalld", "firewalld zones public / external, port forward, masquerade, rpfilter",
        (H0, H1), setup=SETUP, listeners=LISTEN, nft=FIREWALLD.read_text(),
        packets=(
            Send("in h0 tcp 10.1.0.2:40000 > 10.1.0.1:22", K("delivered")),
            Send("in h0 tcp 10.1.0.2:40001 > 10.1.0.1:2222", K("rejected", replies=("icmp 3/13",))),
            Send("in h0 udp [fd01::2]:40002 > [fd01::1]:53", K("rejected", replies=("icmpv6 1/1",))),
            Send("in h0 icmp 10.1.0.2 > 10.1.0.1 type echo-request id 4",
                 K("delivered", replies=("icmp 0/0",))),
            Send("in h0 tcp 10.1.0.2:40003 > 10.1.0.1:8080",
                 K("forwarded", "h1", dst="10.2.0.2", dport=80, src="10.2.0.1")),
            Send("in h1 tcp 10.2.0.2:80 > 10.2.0.1:40003 flags SA",
                 K("forwarded", "h0", src="10.1.0.1", sport=8080, dst="10.1.0.2")),
            Send("in h1 tcp 10.2.0.2:40004 > 10.1.0.1:22", K("delivered")),
            Send("in h1 udp 10.2.0.2:40005 > 10.1.0.1:53", K("rejected", replies=("icmp 3/13",))),
            Send("in h0 tcp 10.1.0.2:40006 > 10.2.0.2:80", K("rejected", replies=("icmp 3/13",))),
            Send("in h0 tcp [fd02::9]:40007 > [fd01::1]:22", K("dropped")),
            Send("local tcp > 10.2.0.2:80", K("sent", "h1", src="10.2.0.1")),
        ))


SCENARIOS = [debian_examples, fail2ban, mixed, sets_maps, all_in_one, skeletons,
             sets_and_maps_example, ct_helpers, overview, netdev_ingress, firewalld]


@pytest.mark.parametrize("make", SCENARIOS, ids=[f.__name__ for f in SCENARIOS])
def test_nft_against_kernel(make: Any, monkeypatch: pytest.MonkeyPatch,
                            record_property: Any) -> None:
    require_kernel("ip", "nft", "iptables-restore", "iptables-save", "conntrack", "stdbuf")
    if not EXAMPLES.exists():
        pytest.skip("nftables examples not installed")
    monkeypatch.setattr(harness, "PREFIX", "nb")
    from journey.engine.simulate import simulate

    sc = make()
    lab, raws = harness.run_scenario(sc)
    assert lab.snapshot is not None, lab.snapshot_error
    flows: tuple[Any, ...] = ()
    agree = 0
    problems: list[str] = []
    fields: dict[str, list[int]] = {}
    for raw in raws:
        obs = interpret(raw, lab)
        j = simulate(lab.snapshot, raw.packet, flows=flows, spec=raw.send.spec)
        flows = j.flows
        mism = compare(obs, j)
        bad = {m.field.split(".")[0] for m in mism}
        for f in applicable(obs, j):
            fields.setdefault(f, [0, 0])
            fields[f][0] += f not in bad
            fields[f][1] += 1
        for st in j.stages:  # helpers are not modelled: the engine must say so
            for r in st.rules:
                if r.matched and "ct helper set" in r.text and not r.uncertain:
                    problems.append(f"{raw.send.spec}: '{r.text}' matched but is not uncertain")
        if raw.send.expect.disposition and obs.disposition != raw.send.expect.disposition:
            problems.append(f"{raw.send.spec}: kernel {obs.disposition}, scenario expects "
                            f"{raw.send.expect.disposition} ({obs.summary()})")
        if mism:
            problems.append(f"{raw.send.spec}: " + "; ".join(m.text() for m in mism))
        else:
            agree += 1
    per_field = " ".join(f"{k}={a}/{n}" for k, (a, n) in sorted(fields.items()))
    record_property("nft_agreement", f"{agree}/{len(raws)}")
    record_property("nft_agreement_fields", per_field)
    print(f"{sc.name}: engine agrees with the kernel on {agree}/{len(raws)} packets; {per_field}")
    assert not problems, "\n".join(problems)


def test_load_balancing_example_does_not_load_as_written() -> None:
    """KERNEL.md: a nat chain at priority -300 is refused by this kernel."""
    require_kernel("ip", "nft")
    from tests.kernelutil import Netns

    with Netns("nb") as ns:
        res = ns.exec(["nft", "-f", str(EXAMPLES / "load_balancing.nft")], check=False)
        assert res.returncode != 0
        assert re.search(r"Error", res.stderr)
