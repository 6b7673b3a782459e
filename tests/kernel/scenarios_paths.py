"""Kernel differential scenarios on routing, forwarding, local paths and IPv6 (helper P).

Data only (see ``harness.Scenario``); collected by ``test_differential.py``. Every scenario
name starts with ``p-``. The standard topology of ``scenarios.py`` is reused (h0 towards the
default router 10.1.0.2 / fd01::2, h1 towards 10.2.0.2 / fd02::2 with 192.0.2.0/24 and
2001:db8:2::/48 behind it, h2 towards 10.3.0.2 / fd03::2); links here may carry more peer
addresses (permanent neighbour entries on the host) so that packets to them leave at once.
"""

from __future__ import annotations

from tests.kernel.harness import K, Link, Listener, Scenario, Send
from tests.kernel.scenarios import FORWARD_ON, H2, ROUTES, UDP53, table

SCENARIOS: list[Scenario] = []

UDP6_53 = Listener("udp", "::", 53)

# h0 / h1 with extra on-link peers (link-local ones too: ICMPv6 answers need them)
P0 = Link("h0", ("10.1.0.1/24", "fd01::1/64"),
          ("10.1.0.2", "fd01::2", "10.1.0.50", "fd01::50", "fe80::2", "10.1.0.0"))
P1 = Link("h1", ("10.2.0.1/24", "fd02::1/64"),
          ("10.2.0.2", "fd02::2", "10.2.0.20", "fd02::20", "10.9.9.9", "fe80::3"))
PLINKS = (P0, P1)


def add(sc: Scenario) -> Scenario:
    SCENARIOS.append(sc)
    return sc


# ---------------------------------------------------------------------------------------------
# IPv6 local output: source address selection
# ---------------------------------------------------------------------------------------------

add(Scenario(
    "p-v6-source-select",
    "IPv6 source selection on h1 with a ULA, a deprecated ULA and a global address; a route "
    "prefsrc (deprecated, and one of another interface) wins over the selection rules.",
    PLINKS, setup=ROUTES + """
ip -6 addr add fd02::5/64 dev h1 nodad preferred_lft 0
ip -6 addr add 2001:db8:99::1/64 dev h1 nodad
ip -6 route add 2001:db8:5::/48 via fd02::2 dev h1 src fd02::5
ip -6 route add 2001:db8:6::/48 via fd02::2 dev h1 src fd01::1
""",
    packets=(
        Send("local udp > [2001:db8:2::10]:53", K("sent", "h1", src="2001:db8:99::1")),
        Send("local udp > [fd02::20]:53", K("sent", "h1", src="fd02::1")),
        Send("local udp > [2001:db8:5::1]:53", K("sent", "h1", src="fd02::5")),
        Send("local udp > [2001:db8:6::1]:53", K("sent", "h1", src="fd01::1")),
        Send("local udp > [fd01::50]:53", K("sent", "h0", src="fd01::1")),
        # (a link-local destination without a scope id is left out: the kernel picks whichever
        # fe80::/64 route was added first, which depends on link-up timing; the engine marks it
        # uncertain, see tests/test_simulate.py)
    ),
))

# ---------------------------------------------------------------------------------------------
# IPv6 multicast / link-local to the host, forwarding checks
# ---------------------------------------------------------------------------------------------

add(Scenario(
    "p-v6-multicast-host",
    "ff02::1 (all nodes) and ff02::2 (all routers, joined because forwarding is on) to the host; "
    "a UDP datagram to ff02::1 reaches a wildcard socket.",
    PLINKS, setup=ROUTES + FORWARD_ON, listeners=(UDP6_53,),
    packets=(
        Send("in h0 icmpv6 fe80::2 > ff02::1 type echo-request id 3",
             K("delivered", replies=("icmpv6 129/0",))),
        Send("in h0 icmpv6 fe80::2 > ff02::2 type echo-request id 4",
             K("delivered", replies=("icmpv6 129/0",))),
        Send("in h0 udp [fe80::2]:5000 > [ff02::1]:53", K("delivered", dst="ff02::1")),
        Send("in h0 udp [fd01::2]:5001 > [ff02::1]:54", K("dropped", replies=())),
        Send("in h0 icmpv6 fd01::2 > fe80::ff:fe00:1 type echo-request id 5",
             K("delivered", replies=("icmpv6 129/0",))),
    ),
))

add(Scenario(
    "p-v6-forward-checks",
    "IPv6 forwarding: hop limit 2 leaves with 1; hop limit 1 / 0 to a local address is "
    "delivered; a link-local source cannot be forwarded to another link (beyond scope); a "
    "route mtu sends packet too big; an IPv4-mapped destination.",
    PLINKS, setup=ROUTES + FORWARD_ON + """
ip -6 route add 2001:db8:7::/48 via fd02::2 dev h1 mtu 1300
""", listeners=(UDP6_53,),
    packets=(
        Send("in h0 udp [fd01::2]:5007 > [fe80::2]:53", K("forwarded", "h0", replies=("icmpv6 137/0",))),
        Send("in h0 udp [fe80::2]:5003 > [fd01::50]:53",
             K("forwarded", "h0", replies=("icmpv6 137/0",), ttl=63)),
        Send("in h0 udp [2001:db8:1::7]:5000 > [2001:db8:2::10]:53 hlim 2",
             K("forwarded", "h1", ttl=1)),
        Send("in h0 udp [fd01::2]:5001 > [fd02::1]:53 hlim 1", K("delivered", ttl=1)),
        Send("in h0 icmpv6 fd01::2 > fd02::1 type echo-request hlim 0",
             K("delivered", replies=("icmpv6 129/0",))),
        Send("in h0 udp [fe80::2]:5002 > [2001:db8:2::10]:53",
             K("dropped", replies=("icmpv6 1/2",), reason="addr-error")),
        Send("in h0 udp [2001:db8:1::7]:5004 > [2001:db8:7::10]:53 len 1400",
             K("dropped", replies=("icmpv6 2/0",))),
        Send("in h0 udp [2001:db8:1::7]:5005 > [2001:db8:7::10]:53 len 1300", K("forwarded", "h1")),
        Send("in h0 udp [fd01::2]:5006 > [::ffff:10.1.0.1]:53",
             K("forwarded", "h0", dst="::ffff:10.1.0.1"),
             note="a v4-mapped destination is not local for IPv6: the default route sends it back"),
    ),
))

add(Scenario(
    "p-v6-forward-perif",
    "IPv6: all.forwarding=1 but h1.forwarding=0 still forwards from h1 (only 'all' counts in "
    "ip6_forward); IPv4: ip_forward=0 but conf.h0.forwarding=1 forwards from h0 only.",
    PLINKS, setup=ROUTES + """
sysctl -qw net.ipv6.conf.all.forwarding=1
sysctl -qw net.ipv6.conf.h1.forwarding=0
sysctl -qw net.ipv4.conf.h0.forwarding=1
""",
    packets=(
        Send("in h1 udp [2001:db8:2::10]:5000 > [2001:db8:1::7]:53", K("forwarded", "h0")),
        Send("in h0 udp [2001:db8:1::7]:5001 > [2001:db8:2::10]:53", K("forwarded", "h1")),
        Send("in h0 udp 198.51.100.7:5002 > 192.0.2.10:53", K("forwarded", "h1")),
        Send("in h1 udp 192.0.2.10:5003 > 198.51.100.7:53", K("dropped", replies=())),
    ),
))

add(Scenario(
    "p-v6-forward-perif-on",
    "IPv6: all.forwarding=0 with h0.forwarding=1: not forwarded (ip6_forward reads 'all').",
    PLINKS, setup=ROUTES + "sysctl -qw net.ipv6.conf.h0.forwarding=1\n",
    packets=(
        Send("in h0 udp [2001:db8:1::7]:5001 > [2001:db8:2::10]:53", K("dropped", replies=())),
        Send("in h0 icmpv6 fd01::2 > fd01::1 type echo-request",
             K("delivered", replies=("icmpv6 129/0",))),
    ),
))

# ---------------------------------------------------------------------------------------------
# IPv4 broadcast, loopback addresses, weak host with rp_filter
# ---------------------------------------------------------------------------------------------

add(Scenario(
    "p-v4-broadcast",
    "Limited and directed broadcasts to the host (also the broadcast of another interface's "
    "subnet), the network address, ICMP echo to a broadcast (ignored), closed ports on "
    "broadcasts (no ICMP error).",
    PLINKS, setup=ROUTES + FORWARD_ON, listeners=(UDP53,),
    packets=(
        Send("in h0 udp 10.1.0.2:5000 > 255.255.255.255:53 mac ff:ff:ff:ff:ff:ff", K("delivered", replies=())),
        Send("in h0 udp 10.1.0.2:5001 > 10.2.0.255:53 mac ff:ff:ff:ff:ff:ff", K("delivered", replies=())),
        Send("in h0 udp 10.1.0.2:5002 > 10.2.0.255:53", K("delivered", replies=())),
        Send("in h0 udp 10.1.0.2:5003 > 10.1.0.0:53", K("forwarded", "h0", replies=("icmp 5/1",)),
             note="no broadcast route for the network address: forwarded back, with a redirect"),
        Send("in h0 icmp 10.1.0.2 > 10.1.0.255 type echo-request mac ff:ff:ff:ff:ff:ff", K("dropped", replies=())),
        Send("in h0 udp 10.1.0.2:5004 > 10.1.0.255:54 mac ff:ff:ff:ff:ff:ff", K("dropped", replies=())),
        Send("in h0 udp 10.1.0.2:5005 > 255.255.255.255:54 mac ff:ff:ff:ff:ff:ff", K("dropped", replies=())),
        Send("in h0 udp 0.0.0.0:68 > 255.255.255.255:53 mac ff:ff:ff:ff:ff:ff", K("delivered", replies=())),
    ),
))

add(Scenario(
    "p-v4-route-localnet",
    "route_localnet=1 on h0 only: 127.0.0.1 from the wire is delivered on h0, a martian on h1; a "
    "loopback source on h0; a local packet from 127.0.0.1 may leave through h0.",
    PLINKS, setup=ROUTES + "sysctl -qw net.ipv4.conf.h0.route_localnet=1\n", listeners=(UDP53,),
    packets=(
        Send("in h0 udp 10.1.0.2:5000 > 127.0.0.1:53", K("delivered", replies=())),
        Send("in h1 udp 10.2.0.2:5001 > 127.0.0.1:53", K("dropped", replies=())),
        Send("in h0 udp 127.0.0.5:5002 > 10.1.0.1:53", K("delivered", replies=())),
        Send("local udp 127.0.0.1:40003 > 198.51.100.7:53", K("sent", "h0", replies=())),
        Send("local udp 127.0.0.1:40004 > 192.0.2.10:53", K("dropped", replies=())),
    ),
))

add(Scenario(
    "p-v4-weak-host-rpf",
    "rp_filter strict on h0 and the weak host model: another interface's address is delivered "
    "when the source routes back through h0; the effective rp_filter is max(all, dev); "
    "accept_local with strict rp_filter.",
    PLINKS, setup=ROUTES + """
sysctl -qw net.ipv4.conf.h0.rp_filter=1
sysctl -qw net.ipv4.conf.all.rp_filter=2
sysctl -qw net.ipv4.conf.h1.rp_filter=1
sysctl -qw net.ipv4.conf.h0.accept_local=1
""", listeners=(UDP53,),
    packets=(
        Send("in h0 udp 10.1.0.2:5000 > 10.2.0.1:53", K("delivered", replies=())),
        Send("in h0 udp 192.0.2.10:5001 > 10.2.0.1:53", K("delivered", replies=())),
        Send("in h1 udp 198.51.100.7:5002 > 10.2.0.1:53", K("delivered", replies=())),
        Send("in h0 udp 10.1.0.1:5003 > 10.1.0.1:53", K("delivered", replies=())),
        Send("in h0 udp 10.2.0.1:5004 > 10.1.0.1:53", K("delivered", replies=())),
    ),
))

# ---------------------------------------------------------------------------------------------
# policy routing
# ---------------------------------------------------------------------------------------------

add(Scenario(
    "p-policy-suppress",
    "lookup main suppress_prefixlength 0 ignores main's default route, the next rule's table "
    "then routes the packet (the wg-quick pattern), IPv4 and IPv6, forwarded and local.",
    (P0, P1, H2), setup=ROUTES + FORWARD_ON + """
ip route add default via 10.3.0.2 dev h2 table 100
ip -6 route add default via fd03::2 dev h2 table 100
ip rule add priority 100 lookup main suppress_prefixlength 0
ip rule add priority 200 lookup 100
ip -6 rule add priority 100 lookup main suppress_prefixlength 0
ip -6 rule add priority 200 lookup 100
""",
    packets=(
        Send("in h0 udp 198.51.100.7:5000 > 192.0.2.10:53", K("forwarded", "h1", replies=())),
        Send("in h0 udp 198.51.100.7:5001 > 203.0.113.5:53", K("forwarded", "h2", replies=())),
        Send("local udp > 203.0.113.5:53", K("sent", "h2", replies=())),
        Send("local udp > 192.0.2.10:53", K("sent", "h1", replies=())),
        Send("in h0 udp [2001:db8:1::7]:5002 > [2001:db8:9::1]:53", K("forwarded", "h2", replies=())),
        Send("in h0 udp [2001:db8:1::7]:5003 > [2001:db8:2::10]:53", K("forwarded", "h1", replies=())),
        Send("local udp > [2001:db8:9::1]:53", K("sent", "h2", replies=())),
    ),
))

add(Scenario(
    "p-policy-not-goto-tos",
    "Policy rules with 'not' (inverts iif too), 'goto' (skipping an unreachable table), 'tos' "
    "(ECN bits ignored, other DSCP bits not) for forwarded packets, and 'iif lo tos' for local "
    "ones.",
    (P0, P1, H2), setup=ROUTES + FORWARD_ON + """
ip route add 203.0.113.0/24 via 10.2.0.2 dev h1
ip route add 203.0.113.0/24 via 10.3.0.2 dev h2 table 100
ip route add unreachable default table 101
ip route add 203.0.113.0/24 via 10.3.0.2 dev h2 table 102
ip rule add priority 90 iif lo tos 0x10 lookup 102
ip rule add priority 95 iif lo lookup main
ip rule add priority 100 not from 192.0.2.0/24 lookup 100
ip rule add priority 110 iif h1 goto 300
ip rule add priority 200 iif h1 lookup 101
ip rule add priority 300 tos 0x10 lookup 102
""",
    packets=(
        Send("in h0 udp 198.51.100.7:5000 > 203.0.113.5:53", K("forwarded", "h2")),
        Send("in h0 udp 192.0.2.10:5001 > 203.0.113.5:53", K("forwarded", "h1")),
        Send("in h0 udp 192.0.2.10:5002 > 203.0.113.5:53 tos 0x10", K("forwarded", "h2")),
        Send("in h1 udp 192.0.2.10:5003 > 203.0.113.5:53", K("forwarded", "h1", replies=())),
        Send("in h1 udp 192.0.2.10:5004 > 203.0.113.5:53 tos 0x10", K("forwarded", "h2")),
        Send("in h1 udp 192.0.2.10:5005 > 203.0.113.5:53 tos 0x12", K("forwarded", "h2")),
        Send("in h1 udp 192.0.2.10:5006 > 203.0.113.5:53 tos 0x14", K("forwarded", "h1")),
        Send("local udp > 203.0.113.5:53 tos 0x10", K("sent", "h2", src="10.3.0.1")),
        Send("local udp > 203.0.113.5:53", K("sent", "h1", src="10.2.0.1")),
    ),
))

# ---------------------------------------------------------------------------------------------
# route attributes: src, mtu, onlink, linkdown
# ---------------------------------------------------------------------------------------------

add(Scenario(
    "p-route-attrs",
    "Route attributes: 'src' (prefsrc from another interface) for local output, 'mtu' on a "
    "route (DF: frag needed; no DF: fragmented; local DF send), an onlink gateway outside "
    "every subnet, an IPv6 route mtu.",
    PLINKS, setup=ROUTES + FORWARD_ON + """
ip route add 203.0.113.0/24 via 10.2.0.2 dev h1 src 10.1.0.1
ip route add 203.0.114.0/24 via 10.2.0.2 dev h1 mtu 1300
ip route add 203.0.115.0/24 via 10.9.9.9 dev h1 onlink
ip -6 route add 2001:db8:7::/48 via fd02::2 dev h1 mtu 1300
""",
    packets=(
        Send("local udp > 203.0.113.5:53", K("sent", "h1", src="10.1.0.1")),
        Send("local tcp > 203.0.113.5:80", K("sent", "h1", replies=())),
        Send("in h0 udp 198.51.100.7:5000 > 203.0.114.5:53 len 1400 df",
             K("dropped", replies=("icmp 3/4",))),
        Send("in h0 udp 198.51.100.7:5001 > 203.0.114.5:53 len 1300 df", K("forwarded", "h1", replies=())),
        Send("in h0 udp 198.51.100.7:5002 > 203.0.114.5:53 len 1400", K("forwarded", "h1", replies=())),
        Send("local udp > 203.0.114.5:53 len 1400 df", K("dropped", replies=())),
        Send("in h0 udp 198.51.100.7:5003 > 203.0.115.5:53", K("forwarded", "h1", replies=())),
        Send("local udp > 203.0.115.5:53", K("sent", "h1", replies=())),
        Send("local udp > [2001:db8:7::5]:53 len 1400", K("sent", "h1", replies=())),
    ),
))

add(Scenario(
    "p-route-linkdown",
    "A route through an interface without carrier (linkdown) with a better metric than a route "
    "through h1 is skipped when ignore_routes_with_linkdown is set on that interface (forwarded "
    "and local packets).",
    PLINKS, setup=ROUTES + FORWARD_ON + """
ip link add h9 type veth peer name h9p
ip addr add 10.9.0.1/24 dev h9
ip link set h9 up
ip route add 203.0.113.0/24 via 10.9.0.2 dev h9 metric 10
ip route add 203.0.113.0/24 via 10.2.0.2 dev h1 metric 20
ip route add 203.0.116.0/24 via 10.9.0.2 dev h9 metric 10
ip route add 203.0.116.0/24 via 10.2.0.2 dev h1 metric 20
sysctl -qw net.ipv4.conf.h9.ignore_routes_with_linkdown=1
""",
    packets=(
        Send("in h0 udp 198.51.100.7:5000 > 203.0.113.5:53", K("forwarded", "h1", replies=())),
        Send("local udp > 203.0.116.5:53", K("sent", "h1", replies=())),
    ),
))

# ---------------------------------------------------------------------------------------------
# TTL to the host, redirects
# ---------------------------------------------------------------------------------------------

add(Scenario(
    "p-ttl-local",
    "TTL 1 and 0 to one of the host's addresses (also another interface's, and a broadcast) "
    "are delivered: only forwarding checks the TTL. TTL 0 to a remote host: time exceeded.",
    PLINKS, setup=ROUTES + FORWARD_ON, listeners=(UDP53,),
    packets=(
        Send("in h0 udp 10.1.0.2:5000 > 10.1.0.1:53 ttl 1", K("delivered", replies=())),
        Send("in h0 udp 10.1.0.2:5001 > 10.2.0.1:53 ttl 1", K("delivered", replies=())),
        Send("in h0 udp 10.1.0.2:5002 > 10.2.0.1:53 ttl 0", K("delivered", replies=())),
        Send("in h0 udp 10.1.0.2:5003 > 10.1.0.255:53 ttl 1 mac ff:ff:ff:ff:ff:ff", K("delivered", replies=())),
        Send("in h0 udp 198.51.100.7:5004 > 192.0.2.10:53 ttl 0", K("dropped", replies=("icmp 11/0",))),
        Send("in h0 icmpv6 fd01::2 > fd02::1 type echo-request hlim 1",
             K("delivered", replies=("icmpv6 129/0",))),
    ),
))

add(Scenario(
    "p-redirect",
    "Forwarded back out of the interface it came in on: an ICMP redirect goes to an on-link "
    "sender only; send_redirects is all || dev (all=0 here, h0=1, h1=0); IPv6 redirect.",
    PLINKS, setup=ROUTES + FORWARD_ON + """
sysctl -qw net.ipv4.conf.all.send_redirects=0
sysctl -qw net.ipv4.conf.h0.send_redirects=1
sysctl -qw net.ipv4.conf.h1.send_redirects=0
""",
    packets=(
        Send("in h0 udp 10.1.0.2:5000 > 10.1.0.50:53", K("forwarded", "h0", replies=("icmp 5/1",))),
        Send("in h0 udp 198.51.100.7:5001 > 10.1.0.50:53", K("forwarded", "h0", replies=())),
        Send("in h1 udp 10.2.0.2:5002 > 10.2.0.20:53", K("forwarded", "h1", replies=())),
        Send("in h0 udp [fd01::2]:5003 > [fd01::50]:53",
             K("forwarded", "h0", replies=("icmpv6 137/0",))),
        Send("in h0 udp [2001:db8:1::7]:5004 > [fd01::50]:53", K("forwarded", "h0", replies=())),
    ),
))

# ---------------------------------------------------------------------------------------------
# netfilter reverse-path checks (routing lookups from rules)
# ---------------------------------------------------------------------------------------------

add(Scenario(
    "p-v6-rpfilter-match",
    "ip6tables -m rpfilter (strict on h0, --loose on h1) in raw PREROUTING; link-local sources.",
    PLINKS, setup=ROUTES + FORWARD_ON, listeners=(UDP6_53,),
    ip6tables=table("raw", "-A PREROUTING -i h0 -m rpfilter --invert -j DROP",
                    "-A PREROUTING -i h1 -m rpfilter --loose --invert -j DROP"),
    packets=(
        Send("in h0 udp [2001:db8:1::7]:5000 > [2001:db8:2::10]:53", K("forwarded", "h1", replies=())),
        Send("in h0 udp [2001:db8:2::7]:5001 > [fd01::1]:53", K("dropped", replies=(), rules=("raw/PREROUTING#1",))),
        Send("in h1 udp [2001:db8:1::7]:5002 > [fd02::1]:53", K("delivered", replies=())),
        Send("in h0 udp [fe80::2]:5003 > [fd01::1]:53", K("delivered", replies=())),
        Send("in h0 udp [fd01::2]:5004 > [fd01::1]:53", K("delivered", replies=())),
        Send("in h1 udp [fd01::9]:5005 > [fd02::1]:53", K("delivered", replies=())),
    ),
))

add(Scenario(
    "p-nft-fib",
    "nft fib expressions: 'fib saddr . iif oif missing drop' (strict reverse path, v4 and v6), "
    "'fib daddr type' local / broadcast.",
    PLINKS, setup=ROUTES + FORWARD_ON, listeners=(UDP53, Listener("udp", "::", 54)),
    nft="""
table inet rpf {
  chain pre {
    type filter hook prerouting priority -150; policy accept;
    fib saddr . iif oif missing counter drop
    fib daddr type local counter
    fib daddr type broadcast counter
    fib daddr . iif type local counter
  }
}
""",
    packets=(
        Send("in h0 udp 192.0.2.10:5000 > 10.1.0.1:53", K("dropped", replies=(), rules=("native:rpf/pre#1",))),
        Send("in h0 udp 198.51.100.7:5001 > 10.1.0.1:53", K("delivered", replies=(), rules=("native:rpf/pre#2", "native:rpf/pre#4",))),
        Send("in h0 udp 198.51.100.7:5002 > 10.2.0.1:53", K("delivered", replies=(), rules=("native:rpf/pre#2",))),
        Send("in h0 udp 10.1.0.2:5003 > 10.1.0.255:53 mac ff:ff:ff:ff:ff:ff", K("delivered", replies=(), rules=("native:rpf/pre#3",))),
        Send("in h0 udp [2001:db8:2::7]:5004 > [fd01::1]:54", K("dropped", replies=(), rules=("native:rpf/pre#1",))),
        Send("in h0 udp [fd01::2]:5005 > [fd02::1]:54", K("delivered", replies=(), rules=("native:rpf/pre#2",))),
        Send("in h0 udp 198.51.100.7:5006 > 192.0.2.10:53", K("forwarded", "h1", replies=())),
    ),
))

add(Scenario(
    "p-neigh-failed",
    "A FAILED neighbour entry for the next hop: the kernel retries resolution, gets no answer, "
    "drops the packet and answers host unreachable (fast neighbour timers).",
    PLINKS, setup=ROUTES + FORWARD_ON + """
sysctl -qw net.ipv4.neigh.h1.retrans_time_ms=20
sysctl -qw net.ipv4.neigh.h1.mcast_solicit=1
sysctl -qw net.ipv4.neigh.h1.app_solicit=0
sysctl -qw net.ipv4.neigh.h1.ucast_solicit=0
ip neigh replace 10.2.0.77 dev h1 nud failed
ip route add 203.0.113.0/24 via 10.2.0.77 dev h1
""",
    packets=(
        Send("in h0 udp 198.51.100.7:5000 > 203.0.113.5:53", K("dropped", replies=("icmp 3/1",))),
    ),
))
