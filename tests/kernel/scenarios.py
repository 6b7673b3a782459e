"""The scenarios of the kernel differential suite (data only; see ``harness.Scenario``).

Standard topology unless a scenario says otherwise::

    neighbour n0 (10.1.0.2, fd01::2, remote 198.51.100.0/24 behind it)
        |  h0 10.1.0.1/24 fd01::1/64
      HOST
        |  h1 10.2.0.1/24 fd02::1/64
    neighbour n1 (10.2.0.2, fd02::2, remote 192.0.2.0/24 and 2001:db8:2::/48 behind it)

The default route points at n0 (10.1.0.2 / fd01::2); 192.0.2.0/24 and 2001:db8:2::/48 are routed
via n1. Each ``Send`` carries the kernel result the scenario expects (checked by the test before
the engine comparison): it documents the behaviour and catches harness bugs.
"""

from __future__ import annotations

from tests.kernel.harness import K, Link, Listener, Scenario, Send

H0 = Link("h0", ("10.1.0.1/24", "fd01::1/64"), ("10.1.0.2", "fd01::2"))
H1 = Link("h1", ("10.2.0.1/24", "fd02::1/64"), ("10.2.0.2", "fd02::2"))
LINKS = (H0, H1)
ROUTES = """
ip route add default via 10.1.0.2 dev h0
ip route add 192.0.2.0/24 via 10.2.0.2 dev h1
ip -6 route add default via fd01::2 dev h0
ip -6 route add 2001:db8:2::/48 via fd02::2 dev h1
"""
FORWARD_ON = """
sysctl -qw net.ipv4.ip_forward=1
sysctl -qw net.ipv6.conf.all.forwarding=1
"""


def filt(*rules: str, policy: dict[str, str] | None = None, extra: str = "") -> str:
    """An iptables-restore ``*filter`` table with the given ``-A`` rules."""
    pol = {"INPUT": "ACCEPT", "FORWARD": "ACCEPT", "OUTPUT": "ACCEPT", **(policy or {})}
    head = "*filter\n" + "".join(f":{c} {p} [0:0]\n" for c, p in pol.items())
    return head + extra + "".join(r + "\n" for r in rules) + "COMMIT\n"


def table(name: str, *rules: str, chains: tuple[str, ...] = ()) -> str:
    builtin = {
        "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
        "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
        "raw": ("PREROUTING", "OUTPUT"),
        "filter": ("INPUT", "FORWARD", "OUTPUT"),
    }[name]
    head = f"*{name}\n" + "".join(f":{c} ACCEPT [0:0]\n" for c in builtin)
    head += "".join(f":{c} - [0:0]\n" for c in chains)
    return head + "".join(r + "\n" for r in rules) + "COMMIT\n"


TCP80 = Listener("tcp", "0.0.0.0", 80)
TCP6_80 = Listener("tcp", "::", 80)
UDP53 = Listener("udp", "0.0.0.0", 53)


SCENARIOS: list[Scenario] = []


def add(sc: Scenario) -> Scenario:
    SCENARIOS.append(sc)
    return sc


# ---------------------------------------------------------------------------------------------
# local delivery
# ---------------------------------------------------------------------------------------------

add(Scenario(
    "local-tcp-listener",
    "TCP SYN to a listening socket is delivered; the kernel answers SYN-ACK; to a closed port RST.",
    LINKS, setup=ROUTES, listeners=(TCP80,),
    iptables=filt("-A INPUT -p tcp --dport 80 -j ACCEPT"),
    packets=(
        Send("in h0 tcp 10.1.0.2:40000 > 10.1.0.1:80 flags S",
             K("delivered", replies=("syn-ack",), rules=("filter/INPUT#1",), dst="10.1.0.1",
               dport=80, ttl=64)),
        Send("in h0 tcp 10.1.0.2:40001 > 10.1.0.1:81 flags S",
             K("rejected", replies=("tcp-rst",), rules=(), reason="no-socket")),
    ),
))

add(Scenario(
    "local-udp",
    "UDP to a bound socket is delivered; to a closed port: ICMP port unreachable.",
    LINKS, setup=ROUTES, listeners=(UDP53,),
    packets=(
        Send("in h0 udp 10.1.0.2:5000 > 10.1.0.1:53", K("delivered", replies=())),
        Send("in h0 udp 10.1.0.2:5001 > 10.1.0.1:54",
             K("rejected", replies=("icmp 3/3",), reason="no-socket")),
    ),
))

add(Scenario(
    "local-icmp-echo",
    "ICMP / ICMPv6 echo requests to the host are answered by the kernel (echo reply).",
    LINKS, setup=ROUTES,
    packets=(
        Send("in h0 icmp 10.1.0.2 > 10.1.0.1 type echo-request id 7",
             K("delivered", replies=("icmp 0/0",), dst="10.1.0.1", ttl=64)),
        Send("in h0 icmpv6 fd01::2 > fd01::1 type echo-request id 7",
             K("delivered", replies=("icmpv6 129/0",), dst="fd01::1", ttl=64)),
    ),
))

add(Scenario(
    "local-ipv6-tcp-udp",
    "IPv6: SYN to a dual-stack listener answered SYN-ACK; closed TCP port RST; closed UDP port "
    "ICMPv6 port unreachable; IPv4 to the same dual-stack socket is delivered too.",
    LINKS, setup=ROUTES, listeners=(TCP6_80,),
    ip6tables=filt("-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT"),
    packets=(
        Send("in h0 tcp [fd01::2]:40000 > [fd01::1]:80 flags S",
             K("delivered", replies=("syn-ack",), rules=("filter/INPUT#1",), dst="fd01::1",
               dport=80)),
        Send("in h0 tcp [fd01::2]:40001 > [fd01::1]:81 flags S",
             K("rejected", replies=("tcp-rst",), rules=())),
        Send("in h0 udp [fd01::2]:5000 > [fd01::1]:54", K("rejected", replies=("icmpv6 1/4",))),
        Send("in h0 tcp 10.1.0.2:40002 > 10.1.0.1:80 flags S",
             K("delivered", replies=("syn-ack",), rules=())),
    ),
))

add(Scenario(
    "local-weak-host",
    "An address of another interface (h1's) is delivered when it arrives on h0 (weak host "
    "model); a UDP broadcast to the subnet broadcast address reaches a wildcard socket.",
    LINKS, setup=ROUTES, listeners=(UDP53,),
    packets=(
        Send("in h0 udp 10.1.0.2:5000 > 10.2.0.1:53", K("delivered", dst="10.2.0.1")),
        Send("in h0 udp 10.1.0.2:5001 > 10.1.0.255:53 mac ff:ff:ff:ff:ff:ff",
             K("delivered", dst="10.1.0.255")),
    ),
))

# ---------------------------------------------------------------------------------------------
# forwarding
# ---------------------------------------------------------------------------------------------

add(Scenario(
    "forward-disabled",
    "ip_forward=0 / IPv6 forwarding=0: a packet for another host is dropped silently.",
    LINKS, setup=ROUTES,
    packets=(
        Send("in h0 tcp 198.51.100.7:40000 > 192.0.2.10:80", K("dropped", replies=())),
        Send("in h0 tcp [2001:db8:1::7]:40000 > [2001:db8:2::10]:80", K("dropped", replies=())),
    ),
))

add(Scenario(
    "forward-enabled",
    "Forwarding on: out through the interface of the route, TTL / hop limit decremented.",
    LINKS, setup=ROUTES + FORWARD_ON,
    packets=(
        Send("in h0 tcp 198.51.100.7:40000 > 192.0.2.10:80",
             K("forwarded", "h1", src="198.51.100.7", dst="192.0.2.10", ttl=63, dport=80)),
        Send("in h1 udp 192.0.2.10:53 > 198.51.100.7:5000",
             K("forwarded", "h0", ttl=63)),
        Send("in h0 tcp [2001:db8:1::7]:40000 > [2001:db8:2::10]:80",
             K("forwarded", "h1", ttl=63, dst="2001:db8:2::10")),
        Send("in h0 icmp 198.51.100.7 > 192.0.2.10 type echo-request ttl 30",
             K("forwarded", "h1", ttl=29)),
    ),
))

add(Scenario(
    "forward-per-interface",
    "ip_forward=1 but net.ipv4.conf.h0.forwarding=0: packets arriving on h0 are not forwarded "
    "(the input device decides), packets from h1 to h0 are.",
    LINKS, setup=ROUTES + FORWARD_ON + "sysctl -qw net.ipv4.conf.h0.forwarding=0\n",
    packets=(
        Send("in h0 udp 198.51.100.7:5000 > 192.0.2.10:53", K("dropped", replies=())),
        Send("in h1 udp 192.0.2.10:53 > 198.51.100.7:5000", K("forwarded", "h0")),
    ),
))

add(Scenario(
    "forward-ttl",
    "TTL 1 / hop limit 1 cannot be forwarded: ICMP time exceeded; TTL 2 leaves with TTL 1.",
    LINKS, setup=ROUTES + FORWARD_ON,
    iptables=filt("-A FORWARD -j ACCEPT"),
    packets=(
        Send("in h0 udp 198.51.100.7:5000 > 192.0.2.10:53 ttl 1",
             K("dropped", replies=("icmp 11/0",), rules=())),
        Send("in h0 udp 198.51.100.7:5001 > 192.0.2.10:53 ttl 2",
             K("forwarded", "h1", ttl=1, rules=("filter/FORWARD#1",))),
        Send("in h0 udp [2001:db8:1::7]:5000 > [2001:db8:2::10]:53 hlim 1",
             K("dropped", replies=("icmpv6 3/0",))),
    ),
))

add(Scenario(
    "forward-mtu",
    "h1 has MTU 1280: a 1400-byte DF packet gets ICMP fragmentation needed, without DF it is "
    "fragmented; IPv6 never fragments on the way: ICMPv6 packet too big.",
    (H0, Link("h1", ("10.2.0.1/24", "fd02::1/64"), ("10.2.0.2", "fd02::2"), mtu=1280)),
    setup=ROUTES + FORWARD_ON,
    packets=(
        Send("in h0 udp 198.51.100.7:5000 > 192.0.2.10:53 len 1400 df",
             K("dropped", replies=("icmp 3/4",))),
        Send("in h0 udp 198.51.100.7:5001 > 192.0.2.10:53 len 1400",
             K("forwarded", "h1", ttl=63)),
        Send("in h0 udp 198.51.100.7:5002 > 192.0.2.10:53 len 1200 df", K("forwarded", "h1")),
        Send("in h0 udp [2001:db8:1::7]:5000 > [2001:db8:2::10]:53 len 1400",
             K("dropped", replies=("icmpv6 2/0",))),
    ),
))

ROUTE_TYPES = """
ip route add 10.1.0.0/16 via 10.1.0.2 dev h0
ip route add blackhole 10.66.0.0/16
ip route add unreachable 10.67.0.0/16
ip route add prohibit 10.68.0.0/16
ip -6 route add blackhole 2001:db8:66::/48
ip -6 route add unreachable 2001:db8:67::/48
ip -6 route add prohibit 2001:db8:68::/48
"""

add(Scenario(
    "route-types",
    "No default route. blackhole drops silently, unreachable answers host unreachable, prohibit "
    "answers administratively prohibited, no route at all answers net unreachable (all of them "
    "dropped in the engine's words, with the ICMP error as a reply); local "
    "senders get the error from sendmsg() instead.",
    LINKS, setup=ROUTE_TYPES + FORWARD_ON,
    packets=(
        Send("in h0 udp 10.1.0.2:5000 > 10.66.0.5:53", K("dropped", replies=())),
        Send("in h0 udp 10.1.0.2:5001 > 10.67.0.5:53", K("dropped", replies=("icmp 3/1",))),
        Send("in h0 udp 10.1.0.2:5002 > 10.68.0.5:53", K("dropped", replies=("icmp 3/13",))),
        Send("in h0 udp 10.1.0.2:5003 > 10.99.0.5:53", K("dropped", replies=("icmp 3/0",))),
        Send("in h0 udp [fd01::2]:5000 > [2001:db8:66::5]:53", K("dropped", replies=())),
        Send("in h0 udp [fd01::2]:5001 > [2001:db8:67::5]:53",
             K("dropped", replies=("icmpv6 1/0",))),
        Send("in h0 udp [fd01::2]:5002 > [2001:db8:68::5]:53",
             K("dropped", replies=("icmpv6 1/1",))),
        Send("local udp > 10.66.0.5:53", K("dropped", replies=())),
        Send("local udp > 10.67.0.5:53", K("dropped", replies=())),
        Send("local udp > 10.68.0.5:53", K("dropped", replies=())),
    ),
))

add(Scenario(
    "local-output",
    "Locally generated packets leave through the route's interface with the source address the "
    "route selects (or the bound one).",
    LINKS, setup=ROUTES,
    iptables=filt("-A OUTPUT -o h1 -j ACCEPT", "-A OUTPUT -p udp --dport 53"),
    packets=(
        Send("local tcp 10.2.0.1:40000 > 192.0.2.10:80 flags S",
             K("sent", "h1", rules=("filter/OUTPUT#1",), src="10.2.0.1", ttl=64)),
        Send("local udp > 198.51.100.7:53",
             K("sent", "h0", rules=("filter/OUTPUT#2",), src="10.1.0.1", sport=40000)),
        Send("local udp > [2001:db8:2::10]:53", K("sent", "h1", src="fd02::1")),
        Send("local icmp > 192.0.2.10 type echo-request id 9",
             K("sent", "h1", rules=("filter/OUTPUT#1",), src="10.2.0.1")),
        Send("local udp 10.1.0.1:40001 > 192.0.2.10:53 ttl 7 tos 0x10",
             K("sent", "h1", src="10.1.0.1", ttl=7, tos="0x10")),
    ),
))

add(Scenario(
    "local-loopback",
    "Packets from the host to its own addresses go through lo: OUTPUT, POSTROUTING, then "
    "PREROUTING and INPUT; a closed port answers the host itself.",
    LINKS, setup=ROUTES, listeners=(UDP53, TCP80),
    iptables=filt("-A INPUT -i lo -j ACCEPT", "-A OUTPUT -o lo -j ACCEPT"),
    packets=(
        Send("local udp 10.1.0.1:40000 > 10.1.0.1:53",
             K("delivered", rules=("filter/OUTPUT#1", "filter/INPUT#1"), dst="10.1.0.1")),
        Send("local udp 127.0.0.1:40001 > 127.0.0.1:53", K("delivered", dst="127.0.0.1")),
        Send("local udp 10.1.0.1:40002 > 10.2.0.1:55",
             K("rejected", replies=("icmp 3/3",), rules=("filter/OUTPUT#1", "filter/INPUT#1"))),
        Send("local tcp 10.1.0.1:40003 > 10.2.0.1:80 flags S",
             K("delivered", replies=("syn-ack",), rules=("filter/OUTPUT#1", "filter/INPUT#1"))),
    ),
))

# ---------------------------------------------------------------------------------------------
# REJECT variants
# ---------------------------------------------------------------------------------------------

add(Scenario(
    "reject-ipv4",
    "Every --reject-with of the IPv4 REJECT target answers with its ICMP type/code or a RST.",
    LINKS, setup=ROUTES,
    iptables=filt(
        "-A INPUT -p tcp --dport 1001 -j REJECT --reject-with icmp-port-unreachable",
        "-A INPUT -p tcp --dport 1002 -j REJECT --reject-with icmp-host-prohibited",
        "-A INPUT -p tcp --dport 1003 -j REJECT --reject-with icmp-net-unreachable",
        "-A INPUT -p tcp --dport 1004 -j REJECT --reject-with icmp-admin-prohibited",
        "-A INPUT -p tcp --dport 1005 -j REJECT --reject-with tcp-reset",
        "-A INPUT -p tcp --dport 1006 -j REJECT --reject-with icmp-host-unreachable",
        "-A INPUT -p tcp --dport 1007 -j REJECT --reject-with icmp-net-prohibited",
        "-A INPUT -p tcp --dport 1008 -j REJECT --reject-with icmp-proto-unreachable",
        "-A INPUT -p udp --dport 1009 -j REJECT",
    ),
    packets=(
        Send("in h0 tcp 10.1.0.2:40001 > 10.1.0.1:1001",
             K("rejected", replies=("icmp 3/3",), rules=("filter/INPUT#1",))),
        Send("in h0 tcp 10.1.0.2:40002 > 10.1.0.1:1002",
             K("rejected", replies=("icmp 3/10",), rules=("filter/INPUT#2",))),
        Send("in h0 tcp 10.1.0.2:40003 > 10.1.0.1:1003",
             K("rejected", replies=("icmp 3/0",), rules=("filter/INPUT#3",))),
        Send("in h0 tcp 10.1.0.2:40004 > 10.1.0.1:1004",
             K("rejected", replies=("icmp 3/13",), rules=("filter/INPUT#4",))),
        Send("in h0 tcp 10.1.0.2:40005 > 10.1.0.1:1005",
             K("rejected", replies=("tcp-rst",), rules=("filter/INPUT#5",))),
        Send("in h0 tcp 10.1.0.2:40006 > 10.1.0.1:1006",
             K("rejected", replies=("icmp 3/1",), rules=("filter/INPUT#6",))),
        Send("in h0 tcp 10.1.0.2:40007 > 10.1.0.1:1007",
             K("rejected", replies=("icmp 3/9",), rules=("filter/INPUT#7",))),
        Send("in h0 tcp 10.1.0.2:40008 > 10.1.0.1:1008",
             K("rejected", replies=("icmp 3/2",), rules=("filter/INPUT#8",))),
        Send("in h0 udp 10.1.0.2:5000 > 10.1.0.1:1009",
             K("rejected", replies=("icmp 3/3",), rules=("filter/INPUT#9",))),
    ),
))

add(Scenario(
    "reject-ipv6",
    "Every --reject-with of ip6tables REJECT answers with its ICMPv6 type/code or a RST.",
    LINKS, setup=ROUTES,
    ip6tables=filt(
        "-A INPUT -p tcp --dport 1001 -j REJECT --reject-with icmp6-no-route",
        "-A INPUT -p tcp --dport 1002 -j REJECT --reject-with icmp6-adm-prohibited",
        "-A INPUT -p tcp --dport 1003 -j REJECT --reject-with icmp6-addr-unreachable",
        "-A INPUT -p tcp --dport 1004 -j REJECT --reject-with icmp6-port-unreachable",
        "-A INPUT -p tcp --dport 1005 -j REJECT --reject-with tcp-reset",
        "-A INPUT -p udp --dport 1006 -j REJECT",
    ),
    packets=(
        Send("in h0 tcp [fd01::2]:40001 > [fd01::1]:1001",
             K("rejected", replies=("icmpv6 1/0",), rules=("filter/INPUT#1",))),
        Send("in h0 tcp [fd01::2]:40002 > [fd01::1]:1002",
             K("rejected", replies=("icmpv6 1/1",), rules=("filter/INPUT#2",))),
        Send("in h0 tcp [fd01::2]:40003 > [fd01::1]:1003",
             K("rejected", replies=("icmpv6 1/3",), rules=("filter/INPUT#3",))),
        Send("in h0 tcp [fd01::2]:40004 > [fd01::1]:1004",
             K("rejected", replies=("icmpv6 1/4",), rules=("filter/INPUT#4",))),
        Send("in h0 tcp [fd01::2]:40005 > [fd01::1]:1005",
             K("rejected", replies=("tcp-rst",), rules=("filter/INPUT#5",))),
        Send("in h0 udp [fd01::2]:5000 > [fd01::1]:1006",
             K("rejected", replies=("icmpv6 1/4",), rules=("filter/INPUT#6",))),
    ),
))

add(Scenario(
    "reject-forward-output",
    "REJECT in FORWARD answers the sender; REJECT in OUTPUT fails the local send and answers "
    "the host itself through lo; a DROP in OUTPUT just drops.",
    LINKS, setup=ROUTES + FORWARD_ON,
    iptables=filt(
        "-A FORWARD -p tcp --dport 25 -j REJECT --reject-with tcp-reset",
        "-A FORWARD -p udp --dport 69 -j REJECT --reject-with icmp-admin-prohibited",
        "-A OUTPUT -o h0 -p udp --dport 1234 -j REJECT",
        "-A OUTPUT -o h0 -p udp --dport 1235 -j DROP",
    ) + table("nat", "-A POSTROUTING -o h0 -j MASQUERADE"),
    packets=(
        Send("in h0 tcp 198.51.100.7:40000 > 192.0.2.10:25",
             K("rejected", replies=("tcp-rst",), rules=("filter/FORWARD#1",))),
        Send("in h0 udp 198.51.100.7:5000 > 192.0.2.10:69",
             K("rejected", replies=("icmp 3/13",), rules=("filter/FORWARD#2",))),
        Send("local udp 10.1.0.1:40000 > 198.51.100.7:1234",
             K("rejected", replies=("icmp 3/3",), rules=("filter/OUTPUT#1",))),
        Send("local udp 10.1.0.1:40001 > 198.51.100.7:1235",
             K("dropped", replies=(), rules=("filter/OUTPUT#2",))),
    ),
))

# ---------------------------------------------------------------------------------------------
# policy routing
# ---------------------------------------------------------------------------------------------

H2 = Link("h2", ("10.3.0.1/24", "fd03::1/64"), ("10.3.0.2", "fd03::2"))
PR_ROUTES = ROUTES + """
ip route add 203.0.113.0/24 via 10.2.0.2 dev h1
ip route add 203.0.113.0/24 via 10.3.0.2 dev h2 table 100
ip route add unreachable default table 101
ip -6 route add 2001:db8:3::/48 via fd02::2 dev h1
ip -6 route add 2001:db8:3::/48 via fd03::2 dev h2 table 100
"""

add(Scenario(
    "policy-fwmark",
    "A mark set in mangle PREROUTING selects routing table 100 (fwmark rule): port 443 leaves "
    "through h2, port 80 through h1. A mark set in mangle OUTPUT re-routes a local packet, which "
    "keeps the source address chosen by the first route lookup.",
    (H0, H1, H2), setup=PR_ROUTES + FORWARD_ON + """
ip rule add fwmark 0x10 lookup 100 priority 100
ip -6 rule add fwmark 0x10 lookup 100 priority 100
""",
    iptables=table("mangle", "-A PREROUTING -p tcp --dport 443 -j MARK --set-mark 0x10",
                   "-A OUTPUT -p tcp --dport 443 -j MARK --set-mark 0x10"),
    ip6tables=table("mangle", "-A PREROUTING -p tcp --dport 443 -j MARK --set-mark 0x10"),
    packets=(
        Send("in h0 tcp 198.51.100.7:40000 > 203.0.113.5:443",
             K("forwarded", "h2", rules=("mangle/PREROUTING#1",), mark="0x10")),
        Send("in h0 tcp 198.51.100.7:40001 > 203.0.113.5:80",
             K("forwarded", "h1", rules=(), mark="0x0")),
        Send("in h0 tcp [2001:db8:1::7]:40000 > [2001:db8:3::5]:443",
             K("forwarded", "h2", rules=("mangle/PREROUTING#1",))),
        Send("local tcp > 203.0.113.5:443",
             K("sent", "h2", rules=("mangle/OUTPUT#1",), src="10.2.0.1", mark="0x10")),
        Send("local tcp > 203.0.113.5:80", K("sent", "h1", rules=(), src="10.2.0.1")),
    ),
))

add(Scenario(
    "policy-selectors",
    "Policy rules on source prefix, iif + ipproto + dport, uidrange, a table holding only an "
    "unreachable default, and a prohibit rule action.",
    (H0, H1, H2), setup=PR_ROUTES + FORWARD_ON + """
ip rule add from 198.51.100.64/26 lookup 100 priority 100
ip rule add iif h0 ipproto udp dport 53 lookup 100 priority 110
ip rule add uidrange 1000-1000 lookup 100 priority 120
ip rule add to 203.0.113.128/26 iif h0 lookup 101 priority 130
ip rule add to 203.0.113.200/32 prohibit priority 140
""",
    packets=(
        Send("in h0 tcp 198.51.100.70:40000 > 203.0.113.5:80", K("forwarded", "h2")),
        Send("in h0 tcp 198.51.100.7:40001 > 203.0.113.5:80", K("forwarded", "h1")),
        Send("in h0 udp 198.51.100.7:5000 > 203.0.113.5:53", K("forwarded", "h2")),
        Send("in h0 udp 198.51.100.7:5001 > 203.0.113.5:54", K("forwarded", "h1")),
        Send("local uid 1000 udp > 203.0.113.5:53", K("sent", "h2", src="10.3.0.1")),
        Send("local udp > 203.0.113.5:54", K("sent", "h1", src="10.2.0.1")),
        Send("in h0 tcp 198.51.100.7:40002 > 203.0.113.130:80",
             K("dropped", replies=("icmp 3/1",))),
        Send("in h0 tcp 198.51.100.7:40003 > 203.0.113.200:80",
             K("dropped", replies=("icmp 3/13",))),
    ),
))

add(Scenario(
    "rp-filter",
    "rp_filter strict on h0 drops a source whose route points elsewhere; loose mode on h1 only "
    "needs some route back.",
    LINKS, setup=ROUTES + """
sysctl -qw net.ipv4.conf.h0.rp_filter=1
sysctl -qw net.ipv4.conf.h1.rp_filter=2
""", listeners=(UDP53,),
    packets=(
        Send("in h0 udp 192.0.2.10:5000 > 10.1.0.1:53", K("dropped", reason="rp-filter")),
        Send("in h0 udp 198.51.100.7:5001 > 10.1.0.1:53", K("delivered")),
        Send("in h1 udp 198.51.100.7:5002 > 10.2.0.1:53", K("delivered")),
        Send("in h1 udp 192.0.2.10:5003 > 10.2.0.1:53", K("delivered")),
    ),
))

add(Scenario(
    "martians",
    "Martian sources (loopback, multicast, zero, the host's own address with accept_local=0) "
    "and a loopback destination arriving from the wire are dropped.",
    LINKS, setup=ROUTES, listeners=(UDP53,),
    packets=(
        Send("in h0 udp 127.0.0.1:5000 > 10.1.0.1:53", K("dropped", replies=())),
        Send("in h0 udp 224.0.0.5:5001 > 10.1.0.1:53", K("dropped", replies=())),
        Send("in h0 udp 0.0.0.0:5002 > 10.1.0.1:53", K("dropped", replies=())),
        Send("in h0 udp 10.2.0.1:5003 > 10.1.0.1:53", K("dropped", replies=())),
        Send("in h0 udp 10.1.0.2:5004 > 127.0.0.1:53", K("dropped", replies=())),
        Send("in h0 udp 10.1.0.2:5005 > 10.1.0.1:53", K("delivered")),
    ),
))

add(Scenario(
    "accept-local",
    "accept_local=1 on h0 lets a packet with one of the host's own addresses as source in.",
    LINKS, setup=ROUTES + "sysctl -qw net.ipv4.conf.h0.accept_local=1\n", listeners=(UDP53,),
    packets=(
        Send("in h0 udp 10.2.0.1:5000 > 10.1.0.1:53", K("delivered", src="10.2.0.1")),
        Send("in h1 udp 10.1.0.1:5001 > 10.2.0.1:53", K("dropped")),
    ),
))

# ---------------------------------------------------------------------------------------------
# NAT
# ---------------------------------------------------------------------------------------------

add(Scenario(
    "nat-dnat-port-forward",
    "DNAT port forward 10.1.0.1:8080 -> 10.2.0.2:80: the SYN is forwarded translated, the "
    "SYN-ACK is un-NATed back, later packets follow the conntrack entry (no nat rule). A DNAT to "
    "a host on the incoming link goes back out the same interface.",
    LINKS, setup=ROUTES + FORWARD_ON,
    iptables=table("nat", "-A PREROUTING -i h0 -p tcp --dport 8080 -j DNAT --to-destination 10.2.0.2:80",
                   "-A PREROUTING -i h0 -p tcp --dport 8081 -j DNAT --to-destination 10.1.0.2:80")
    + filt("-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
           "-A FORWARD -p tcp -d 10.2.0.2 --dport 80 -j ACCEPT",
           "-A FORWARD -p tcp -d 10.1.0.2 --dport 80 -j ACCEPT"),
    packets=(
        Send("in h0 tcp 198.51.100.7:40000 > 10.1.0.1:8080 flags S",
             K("forwarded", "h1", rules=("nat/PREROUTING#1", "filter/FORWARD#2"), ct="NEW",
               dst="10.2.0.2", dport=80, src="198.51.100.7", sport=40000)),
        Send("in h1 tcp 10.2.0.2:80 > 198.51.100.7:40000 flags SA",
             K("forwarded", "h0", rules=("filter/FORWARD#1",), ct="ESTABLISHED",
               src="10.1.0.1", sport=8080, dst="198.51.100.7")),
        Send("in h0 tcp 198.51.100.7:40000 > 10.1.0.1:8080 flags A",
             K("forwarded", "h1", rules=("filter/FORWARD#1",), ct="ESTABLISHED",
               dst="10.2.0.2", dport=80)),
        Send("in h0 tcp 198.51.100.7:40001 > 10.1.0.1:8081 flags S",
             K("forwarded", "h0", rules=("nat/PREROUTING#2", "filter/FORWARD#3"),
               dst="10.1.0.2", dport=80)),
    ),
))

add(Scenario(
    "nat-masquerade-snat",
    "MASQUERADE / SNAT on egress: the source becomes the egress address (SNAT also the port); "
    "the answer is un-NATed to the original client.",
    LINKS, setup=ROUTES + FORWARD_ON,
    iptables=table("nat", "-A POSTROUTING -o h1 -p tcp -j SNAT --to-source 10.2.0.1:61000",
                   "-A POSTROUTING -o h1 -j MASQUERADE"),
    packets=(
        Send("in h0 udp 198.51.100.7:5000 > 192.0.2.10:53",
             K("forwarded", "h1", rules=("nat/POSTROUTING#2",), src="10.2.0.1", sport=5000,
               ct="NEW")),
        Send("in h1 udp 192.0.2.10:53 > 10.2.0.1:5000",
             K("forwarded", "h0", rules=(), dst="198.51.100.7", dport=5000, ct="ESTABLISHED")),
        Send("in h0 tcp 198.51.100.7:40000 > 192.0.2.10:80",
             K("forwarded", "h1", rules=("nat/POSTROUTING#1",), src="10.2.0.1", sport=61000)),
        Send("in h1 tcp 192.0.2.10:80 > 10.2.0.1:61000 flags SA",
             K("forwarded", "h0", dst="198.51.100.7", dport=40000, ct="ESTABLISHED")),
    ),
))

add(Scenario(
    "nat-redirect",
    "REDIRECT sends to the primary address of the incoming interface (h1's for a packet from "
    "h1), to the local listener.",
    LINKS, setup=ROUTES, listeners=(TCP80,),
    iptables=table("nat", "-A PREROUTING -p tcp --dport 8080 -j REDIRECT --to-ports 80"),
    packets=(
        Send("in h0 tcp 10.1.0.2:40000 > 10.1.0.1:8080",
             K("delivered", replies=("syn-ack",), rules=("nat/PREROUTING#1",), dst="10.1.0.1",
               dport=80)),
        Send("in h1 tcp 10.2.0.2:40001 > 10.1.0.1:8080",
             K("delivered", replies=("syn-ack",), rules=("nat/PREROUTING#1",), dst="10.2.0.1",
               dport=80)),
    ),
))

add(Scenario(
    "nat-output-dnat",
    "DNAT in nat OUTPUT: to a local port (stays on lo), and to a remote host, which re-routes "
    "the packet through h1 keeping its first source address.",
    LINKS, setup=ROUTES, listeners=(UDP53,),
    iptables=table("nat", "-A OUTPUT -p udp --dport 99 -j DNAT --to-destination 10.1.0.1:53",
                   "-A OUTPUT -p tcp --dport 8080 -j DNAT --to-destination 192.0.2.10:80"),
    packets=(
        Send("local udp 10.1.0.1:40000 > 10.1.0.1:99",
             K("delivered", rules=("nat/OUTPUT#1",), dport=53, dst="10.1.0.1")),
        Send("local tcp > 198.51.100.7:8080",
             K("sent", "h1", rules=("nat/OUTPUT#2",), src="10.1.0.1", dst="192.0.2.10",
               dport=80)),
    ),
))

add(Scenario(
    "nat-ipv6",
    "ip6tables NAT: DNAT a port to a server behind h1, masquerade towards h1.",
    LINKS, setup=ROUTES + FORWARD_ON,
    ip6tables=table("nat", "-A PREROUTING -i h0 -p tcp --dport 8080 -j DNAT --to-destination [fd02::2]:80",
                    "-A POSTROUTING -o h1 -j MASQUERADE"),
    packets=(
        Send("in h0 tcp [2001:db8:1::7]:40000 > [fd01::1]:8080",
             K("forwarded", "h1", rules=("nat/PREROUTING#1", "nat/POSTROUTING#1"), src="fd02::1",
               dst="fd02::2", dport=80, ct="NEW")),
        Send("in h1 tcp [fd02::2]:80 > [fd02::1]:40000 flags SA",
             K("forwarded", "h0", rules=(), src="fd01::1", sport=8080, dst="2001:db8:1::7",
               dport=40000, ct="ESTABLISHED")),
    ),
))

add(Scenario(
    "nat-ttl-expired",
    "A TTL=1 packet to a DNAT port is translated in PREROUTING, then the forward TTL check "
    "fails before FORWARD: time exceeded, FORWARD rules never see it.",
    LINKS, setup=ROUTES + FORWARD_ON,
    iptables=table("nat", "-A PREROUTING -p udp --dport 5353 -j DNAT --to-destination 10.2.0.2:53")
    + filt("-A FORWARD -j ACCEPT"),
    packets=(
        Send("in h0 udp 198.51.100.7:5000 > 10.1.0.1:5353 ttl 1",
             K("dropped", replies=("icmp 11/0",), rules=("nat/PREROUTING#1",))),
        Send("in h0 udp 198.51.100.7:5001 > 10.1.0.1:5353 ttl 2",
             K("forwarded", "h1", rules=("nat/PREROUTING#1", "filter/FORWARD#1"), ttl=1,
               dst="10.2.0.2")),
    ),
))

# ---------------------------------------------------------------------------------------------
# conntrack sequences
# ---------------------------------------------------------------------------------------------

STATEFUL_FWD = filt(
    "-A FORWARD -m conntrack --ctstate INVALID -j DROP",
    "-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
    "-A FORWARD -p tcp --syn -m conntrack --ctstate NEW -j ACCEPT",
    "-A FORWARD -p udp -m conntrack --ctstate NEW -j ACCEPT",
    policy={"FORWARD": "DROP"},
)

add(Scenario(
    "conntrack-tcp-handshake",
    "SYN NEW, SYN-ACK and ACK ESTABLISHED through a stateful FORWARD chain; a mid-stream ACK "
    "without an entry is NEW (loose pickup), not INVALID, and falls to the DROP policy; SYN+FIN "
    "is INVALID.",
    LINKS, setup=ROUTES + FORWARD_ON, iptables=STATEFUL_FWD,
    packets=(
        Send("in h0 tcp 198.51.100.7:40000 > 192.0.2.10:80 flags S",
             K("forwarded", "h1", rules=("filter/FORWARD#3",), ct="NEW")),
        Send("in h1 tcp 192.0.2.10:80 > 198.51.100.7:40000 flags SA",
             K("forwarded", "h0", rules=("filter/FORWARD#2",), ct="ESTABLISHED")),
        Send("in h0 tcp 198.51.100.7:40000 > 192.0.2.10:80 flags A",
             K("forwarded", "h1", rules=("filter/FORWARD#2",), ct="ESTABLISHED")),
        Send("in h0 tcp 198.51.100.7:40000 > 192.0.2.10:80 flags PA len 58",
             K("forwarded", "h1", rules=("filter/FORWARD#2",), ct="ESTABLISHED")),
        Send("in h0 tcp 198.51.100.7:40100 > 192.0.2.10:80 flags A",
             K("dropped", rules=(), ct="NEW", reason="FORWARD policy")),
        Send("in h0 tcp 198.51.100.7:40200 > 192.0.2.10:80 flags SF",
             K("dropped", rules=("filter/FORWARD#1",), ct="INVALID")),
    ),
))

add(Scenario(
    "conntrack-related-icmp",
    "An ICMP port unreachable quoting a forwarded UDP packet is RELATED to its flow and is "
    "forwarded back; an unrelated ICMP error is NEW and dropped. IPv6 likewise.",
    LINKS, setup=ROUTES + FORWARD_ON, iptables=STATEFUL_FWD, ip6tables=STATEFUL_FWD,
    packets=(
        Send("in h0 udp 198.51.100.7:5000 > 10.2.0.2:53",
             K("forwarded", "h1", rules=("filter/FORWARD#4",), ct="NEW")),
        Send("in h1 icmp 10.2.0.2 > 198.51.100.7 type destination-unreachable code 3",
             K("forwarded", "h0", rules=("filter/FORWARD#2",), ct="RELATED"), quote=True),
        Send("in h1 icmp 10.2.0.2 > 198.51.100.8 type destination-unreachable code 3",
             K("dropped", rules=("filter/FORWARD#1",), ct="INVALID"), quote=True,
             note="the outer destination is not the quoted packet's source: INVALID"),
        Send("in h0 udp [2001:db8:1::7]:5000 > [fd02::2]:53",
             K("forwarded", "h1", rules=("filter/FORWARD#4",), ct="NEW")),
        Send("in h1 icmpv6 fd02::2 > 2001:db8:1::7 type destination-unreachable code 4",
             K("forwarded", "h0", rules=("filter/FORWARD#2",), ct="RELATED"), quote=True),
    ),
))

add(Scenario(
    "conntrack-local",
    "A stateful INPUT chain: the SYN is NEW and reaches the listener, the handshake ACK is "
    "ESTABLISHED and completes the connection; a mid-stream ACK to the same port is NEW, passes "
    "the NEW rule and the socket layer answers RST.",
    LINKS, setup=ROUTES, listeners=(TCP80,),
    iptables=filt("-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
                  "-A INPUT -p tcp --dport 80 -m conntrack --ctstate NEW -j ACCEPT",
                  policy={"INPUT": "DROP"}),
    packets=(
        Send("in h0 tcp 10.1.0.2:40000 > 10.1.0.1:80 flags S",
             K("delivered", replies=("syn-ack",), rules=("filter/INPUT#2",), ct="NEW")),
        Send("in h0 tcp 10.1.0.2:40000 > 10.1.0.1:80 flags A",
             K("delivered", replies=(), rules=("filter/INPUT#1",), ct="ESTABLISHED")),
        Send("in h0 tcp 10.1.0.2:40050 > 10.1.0.1:80 flags A",
             K("rejected", replies=("tcp-rst",), rules=("filter/INPUT#2",), ct="NEW")),
        Send("in h0 tcp 10.1.0.2:40051 > 10.1.0.1:22 flags S",
             K("dropped", replies=(), rules=(), ct="NEW")),
    ),
))

# ---------------------------------------------------------------------------------------------
# match families (rules without a target only count: the trace shows every one that matched)
# ---------------------------------------------------------------------------------------------

add(Scenario(
    "match-l4",
    "tcp/udp/icmp matches: ports, port ranges, multiport, tcp flags, --syn, icmp types, "
    "comment, length.",
    LINKS, setup=ROUTES, listeners=(TCP80, UDP53),
    iptables=filt(
        "-A INPUT -p tcp -m multiport --dports 22,80,443",
        "-A INPUT -p tcp -m multiport --sports 40000:40010",
        "-A INPUT -p tcp -m tcp --tcp-flags SYN,ACK,FIN,RST SYN",
        "-A INPUT -p tcp --syn",
        "-A INPUT -p tcp ! --syn",
        "-A INPUT -p tcp -m tcp --dport 80:90",
        "-A INPUT -p tcp -m tcp ! --dport 80",
        "-A INPUT -p udp -m multiport --ports 53,5353",
        "-A INPUT -p udp -m udp --sport 5000:5010",
        "-A INPUT -m comment --comment \"every packet\"",
        "-A INPUT -p icmp -m icmp --icmp-type echo-request",
        "-A INPUT -p icmp -m icmp --icmp-type 3/3",
        "-A INPUT -m length --length 0:60",
        "-A INPUT -m length --length 61:1500",
        "-A INPUT -p tcp -m tcp --tcp-flags ALL ACK,PSH",
    ),
    packets=(
        Send("in h0 tcp 10.1.0.2:40000 > 10.1.0.1:80 flags S",
             K("delivered", rules=("filter/INPUT#1", "filter/INPUT#2", "filter/INPUT#3",
                                   "filter/INPUT#4", "filter/INPUT#6", "filter/INPUT#10",
                                   "filter/INPUT#13"))),
        Send("in h0 tcp 10.1.0.2:41000 > 10.1.0.1:443 flags PA len 80",
             K("rejected", replies=("tcp-rst",),
               rules=("filter/INPUT#1", "filter/INPUT#5", "filter/INPUT#7", "filter/INPUT#10",
                      "filter/INPUT#14", "filter/INPUT#15"))),
        Send("in h0 udp 10.1.0.2:5005 > 10.1.0.1:53",
             K("delivered", rules=("filter/INPUT#8", "filter/INPUT#9", "filter/INPUT#10",
                                   "filter/INPUT#13"))),
        Send("in h0 icmp 10.1.0.2 > 10.1.0.1 type echo-request",
             K("delivered", replies=("icmp 0/0",),
               rules=("filter/INPUT#10", "filter/INPUT#11", "filter/INPUT#13"))),
    ),
))

add(Scenario(
    "match-ip",
    "IP-level matches: -s/-d/-i with negation, iprange, ttl, tos, dscp, mac source, pkttype, "
    "addrtype, mark.",
    LINKS, setup=ROUTES, listeners=(UDP53,),
    iptables=filt(
        "-A INPUT -s 10.1.0.0/24 -d 10.1.0.1/32 -i h0",
        "-A INPUT ! -s 10.1.0.0/24",
        "-A INPUT ! -i h0",
        "-A INPUT -m iprange --src-range 10.1.0.1-10.1.0.10",
        "-A INPUT -m iprange --dst-range 10.1.0.100-10.1.0.255",
        "-A INPUT -m ttl --ttl-lt 10",
        "-A INPUT -m ttl --ttl-eq 64",
        "-A INPUT -m tos --tos 0x10",
        "-A INPUT -m dscp --dscp 0x0a",
        "-A INPUT -m mac --mac-source 02:00:00:00:00:02",
        "-A INPUT -m pkttype --pkt-type broadcast",
        "-A INPUT -m pkttype --pkt-type unicast",
        "-A INPUT -m addrtype --dst-type LOCAL",
        "-A INPUT -m addrtype --dst-type BROADCAST",
        "-A INPUT -m addrtype --src-type UNICAST",
        "-A INPUT -m mark --mark 0x0",
    ),
    packets=(
        Send("in h0 udp 10.1.0.2:5000 > 10.1.0.1:53 smac 02:00:00:00:00:02",
             K("delivered", rules=("filter/INPUT#1", "filter/INPUT#4", "filter/INPUT#7",
                                   "filter/INPUT#10", "filter/INPUT#12", "filter/INPUT#13",
                                   "filter/INPUT#15", "filter/INPUT#16"))),
        Send("in h0 udp 10.1.0.2:5001 > 10.1.0.255:53 mac ff:ff:ff:ff:ff:ff smac 02:00:00:00:00:02 "
             "ttl 5 tos 0x10",
             K("delivered", rules=("filter/INPUT#4", "filter/INPUT#5", "filter/INPUT#6",
                                   "filter/INPUT#8", "filter/INPUT#10", "filter/INPUT#11",
                                   "filter/INPUT#14", "filter/INPUT#15", "filter/INPUT#16"))),
        Send("in h1 udp 198.51.100.7:5002 > 10.2.0.1:53 tos 0x28 smac 02:00:00:00:01:02",
             K("delivered", rules=("filter/INPUT#2", "filter/INPUT#3", "filter/INPUT#7",
                                   "filter/INPUT#9", "filter/INPUT#12", "filter/INPUT#13",
                                   "filter/INPUT#15", "filter/INPUT#16"))),
    ),
))

add(Scenario(
    "match-state-mark",
    "state / conntrack / connmark / mark matches with the MARK and CONNMARK targets: the mark "
    "saved on the SYN is restored on the SYN-ACK of the same connection.",
    LINKS, setup=ROUTES + FORWARD_ON,
    iptables=table("mangle",
                   "-A PREROUTING -m conntrack --ctstate NEW -j MARK --set-mark 0x7",
                   "-A PREROUTING -m state --state NEW -j CONNMARK --save-mark",
                   "-A PREROUTING -m conntrack --ctstate ESTABLISHED -j CONNMARK --restore-mark",
                   "-A PREROUTING -m connmark --mark 0x7",
                   "-A PREROUTING -m mark --mark 0x7/0xf")
    + filt("-A FORWARD -m state --state ESTABLISHED,RELATED",
           "-A FORWARD -m conntrack --ctstate NEW --ctproto tcp --ctorigdstport 80",
           "-A FORWARD -m conntrack --ctdir REPLY",
           "-A FORWARD -m conntrack --ctstatus SEEN_REPLY"),
    packets=(
        Send("in h0 tcp 198.51.100.7:40000 > 192.0.2.10:80 flags S",
             K("forwarded", "h1", ct="NEW", mark="0x7",
               rules=("mangle/PREROUTING#1", "mangle/PREROUTING#2", "mangle/PREROUTING#4",
                      "mangle/PREROUTING#5", "filter/FORWARD#2"))),
        Send("in h1 tcp 192.0.2.10:80 > 198.51.100.7:40000 flags SA",
             K("forwarded", "h0", ct="ESTABLISHED", mark="0x7",
               rules=("mangle/PREROUTING#3", "mangle/PREROUTING#4", "mangle/PREROUTING#5",
                      "filter/FORWARD#1", "filter/FORWARD#3", "filter/FORWARD#4"))),
    ),
))

add(Scenario(
    "match-owner",
    "owner match in OUTPUT: uid 1000's packets are rejected (EPERM, ICMP to the host itself), "
    "root's pass; --uid-owner range and ! negation.",
    LINKS, setup=ROUTES,
    iptables=filt("-A OUTPUT -o h0 -m owner --uid-owner 1000 -j REJECT",
                  "-A OUTPUT -o h0 -m owner ! --uid-owner 1000-2000",
                  "-A OUTPUT -o h0 -m owner --uid-owner 0"),
    packets=(
        Send("local uid 1000 udp 10.1.0.1:40000 > 198.51.100.7:53",
             K("rejected", replies=("icmp 3/3",), rules=("filter/OUTPUT#1",))),
        Send("local uid 0 udp 10.1.0.1:40001 > 198.51.100.7:53",
             K("sent", "h0", rules=("filter/OUTPUT#2", "filter/OUTPUT#3"))),
        Send("local uid 1500 udp 10.1.0.1:40002 > 198.51.100.7:53", K("sent", "h0", rules=())),
    ),
))

add(Scenario(
    "match-ipset",
    "set match against ipsets created with the ipset tool (hash:ip, hash:net, hash:ip,port).",
    LINKS, setup=ROUTES + """
ipset create kdallow hash:ip
ipset add kdallow 10.1.0.2
ipset create kdnets hash:net
ipset add kdnets 198.51.100.0/24
ipset create kdsvc hash:ip,port
ipset add kdsvc 10.1.0.1,udp:53
""", tools=("ipset",), listeners=(UDP53, TCP80),
    iptables=filt("-A INPUT -m set --match-set kdallow src -p tcp -j ACCEPT",
                  "-A INPUT -m set --match-set kdnets src -p tcp --dport 80 -j ACCEPT",
                  "-A INPUT -m set --match-set kdsvc dst,dst -j ACCEPT",
                  "-A INPUT -m set ! --match-set kdnets src -p tcp -j DROP",
                  policy={"INPUT": "DROP"}),
    packets=(
        Send("in h0 tcp 10.1.0.2:40000 > 10.1.0.1:80",
             K("delivered", rules=("filter/INPUT#1",))),
        Send("in h0 tcp 198.51.100.7:40001 > 10.1.0.1:80",
             K("delivered", rules=("filter/INPUT#2",))),
        Send("in h0 udp 198.51.100.7:5000 > 10.1.0.1:53",
             K("delivered", rules=("filter/INPUT#3",))),
        Send("in h1 tcp 192.0.2.10:40002 > 10.2.0.1:80", K("dropped", rules=("filter/INPUT#4",))),
        Send("in h0 tcp 198.51.100.7:40003 > 10.1.0.1:22", K("dropped", rules=())),
    ),
))

add(Scenario(
    "match-limit-fragments",
    "limit with burst 1: the first packet matches, the next within a second does not. A "
    "non-first fragment for the host is queued for reassembly before the INPUT hook (no rule "
    "sees it, never delivered); a forwarded one (no conntrack, so no defrag) matches -f in "
    "FORWARD and carries no ports.",
    LINKS, setup=ROUTES + FORWARD_ON, listeners=(UDP53,),
    iptables=filt("-A INPUT -p udp -m limit --limit 1/min --limit-burst 1",
                  "-A INPUT -f",
                  "-A INPUT -p udp -m udp --dport 53",
                  "-A FORWARD -f",
                  "-A FORWARD -p udp -m udp --dport 53"),
    packets=(
        Send("in h0 udp 10.1.0.2:5000 > 10.1.0.1:53",
             K("delivered", rules=("filter/INPUT#1", "filter/INPUT#3"))),
        Send("in h0 udp 10.1.0.2:5001 > 10.1.0.1:53", K("delivered", rules=("filter/INPUT#3",))),
        Send("in h0 udp 10.1.0.2:5002 > 10.1.0.1:53 frag 16", K("dropped", rules=())),
        Send("in h0 udp 198.51.100.7:5003 > 192.0.2.10:53 frag 16",
             K("forwarded", "h1", rules=("filter/FORWARD#1",))),
    ),
))

add(Scenario(
    "fragments-conntrack",
    "With conntrack in use, nf_defrag (PREROUTING priority -400, before raw) holds every lone "
    "fragment, first (MF) or not, local or forwarded, IPv4 and IPv6: no rule sees it, nothing "
    "is delivered or forwarded.",
    LINKS, setup=ROUTES + FORWARD_ON, listeners=(UDP53,),
    iptables=table("raw", "-A PREROUTING -f", "-A PREROUTING -p udp")
    + filt("-A INPUT -m conntrack --ctstate NEW", "-A INPUT -f",
           "-A FORWARD -m conntrack --ctstate NEW", "-A FORWARD -f"),
    ip6tables=table("raw", "-A PREROUTING -m ipv6header --header ipv6-frag --soft")
    + filt("-A INPUT -m conntrack --ctstate NEW",
           "-A INPUT -m ipv6header --header ipv6-frag --soft",
           "-A FORWARD -m conntrack --ctstate NEW",
           "-A FORWARD -m ipv6header --header ipv6-frag --soft"),
    packets=(
        Send("in h0 udp 10.1.0.2:5000 > 10.1.0.1:53 frag 16", K("dropped", rules=())),
        Send("in h0 udp 10.1.0.2:5001 > 10.1.0.1:53 mf", K("dropped", rules=())),
        Send("in h0 udp 198.51.100.7:5002 > 192.0.2.10:53 frag 16", K("dropped", rules=())),
        Send("in h0 udp [fd01::2]:5003 > [fd01::1]:53 frag 16", K("dropped", rules=())),
        Send("in h0 udp [2001:db8:1::7]:5004 > [2001:db8:2::10]:53 frag 16",
             K("dropped", rules=())),
        Send("local udp 10.2.0.1:5005 > 192.0.2.10:53 frag 16", K("dropped", rules=())),
    ),
))

add(Scenario(
    "fragments-no-conntrack",
    "Without conntrack: an IPv4 fragment for the host (first with MF, or not) passes PREROUTING "
    "and is queued by ip_local_deliver before INPUT; IPv6 reassembles after the INPUT hook "
    "(the fragment header is handled as a protocol), so INPUT rules see each IPv6 fragment; "
    "forwarded fragments of both families pass FORWARD as they are.",
    LINKS, setup=ROUTES + FORWARD_ON, listeners=(UDP53,),
    iptables=table("mangle", "-A PREROUTING -p udp") + filt("-A INPUT -p udp", "-A FORWARD -p udp"),
    ip6tables=filt("-A INPUT -m ipv6header --header ipv6-frag --soft",
                   "-A INPUT -m frag --fragmore",
                   "-A INPUT -m frag --fragfirst",
                   "-A INPUT -m frag --fraglast",
                   "-A INPUT -m ipv6header ! --header ipv6-frag --soft",
                   "-A FORWARD -m ipv6header --header ipv6-frag --soft",
                   "-A FORWARD -m frag --fragmore"),
    packets=(
        Send("in h0 udp 10.1.0.2:5001 > 10.1.0.1:53 mf",
             K("dropped", rules=("mangle/PREROUTING#1",))),
        Send("in h0 udp [fd01::2]:5002 > [fd01::1]:53 frag 16",
             K("dropped", rules=("filter/INPUT#1", "filter/INPUT#4"))),
        Send("in h0 udp [fd01::2]:5003 > [fd01::1]:53 mf",
             K("dropped", rules=("filter/INPUT#1", "filter/INPUT#2", "filter/INPUT#3"))),
        Send("in h0 udp [2001:db8:1::7]:5004 > [2001:db8:2::10]:53 frag 16",
             K("forwarded", "h1", rules=("filter/FORWARD#1",))),
        Send("in h0 udp 198.51.100.7:5005 > 192.0.2.10:53 mf",
             K("forwarded", "h1", rules=("mangle/PREROUTING#1", "filter/FORWARD#1"))),
        Send("local udp 10.2.0.1:5006 > 192.0.2.10:53 frag 16", K("sent", "h1")),
    ),
))

# ---------------------------------------------------------------------------------------------
# targets
# ---------------------------------------------------------------------------------------------

add(Scenario(
    "target-ttl-tos-dscp",
    "Header rewriting targets in mangle: TTL set/decrement, TOS, DSCP, seen on the wire.",
    LINKS, setup=ROUTES + FORWARD_ON,
    iptables=table("mangle",
                   "-A PREROUTING -p udp --dport 53 -j TTL --ttl-set 5",
                   "-A PREROUTING -p udp --dport 54 -j TTL --ttl-dec 10",
                   "-A FORWARD -p udp --dport 53 -j TOS --set-tos 0x10",
                   "-A POSTROUTING -p udp --dport 54 -j DSCP --set-dscp 0x0a",
                   "-A OUTPUT -p udp --dport 55 -j TTL --ttl-set 3"),
    packets=(
        Send("in h0 udp 198.51.100.7:5000 > 192.0.2.10:53",
             K("forwarded", "h1", ttl=4, tos="0x10",
               rules=("mangle/PREROUTING#1", "mangle/FORWARD#1"))),
        Send("in h0 udp 198.51.100.7:5001 > 192.0.2.10:54",
             K("forwarded", "h1", ttl=53, tos="0x28",
               rules=("mangle/PREROUTING#2", "mangle/POSTROUTING#1"))),
        Send("local udp > 192.0.2.10:55", K("sent", "h1", ttl=3, rules=("mangle/OUTPUT#1",))),
    ),
))

add(Scenario(
    "target-notrack-log",
    "raw NOTRACK / CT --notrack make packets UNTRACKED (ctstate UNTRACKED, no NAT); LOG "
    "continues to the next rule.",
    LINKS, setup=ROUTES, listeners=(UDP53, TCP80),
    iptables=table("raw", "-A PREROUTING -p udp --dport 53 -j NOTRACK",
                   "-A PREROUTING -p tcp --dport 80 -j CT --notrack")
    + table("nat", "-A PREROUTING -p tcp --dport 80 -j DNAT --to-destination 10.9.9.9")
    + filt("-A INPUT -m conntrack --ctstate UNTRACKED -j LOG --log-prefix \"kd untracked \"",
           "-A INPUT -m state --state UNTRACKED",
           "-A INPUT -m conntrack --ctstate NEW"),
    packets=(
        Send("in h0 udp 10.1.0.2:5000 > 10.1.0.1:53",
             K("delivered", ct="UNTRACKED",
               rules=("raw/PREROUTING#1", "filter/INPUT#1", "filter/INPUT#2"))),
        Send("in h0 tcp 10.1.0.2:40000 > 10.1.0.1:80",
             K("delivered", ct="UNTRACKED", replies=("syn-ack",), dst="10.1.0.1",
               rules=("raw/PREROUTING#2", "filter/INPUT#1", "filter/INPUT#2"))),
        Send("in h0 udp 10.1.0.2:5001 > 10.1.0.1:54",
             K("rejected", ct="NEW", replies=("icmp 3/3",), rules=("filter/INPUT#3",))),
    ),
))

add(Scenario(
    "target-chains",
    "User chains: a chain jumped to twice is walked twice, RETURN goes back to the caller, "
    "-g (goto) makes the end of the target chain return to the caller of the base chain, "
    "so the policy decides.",
    LINKS, setup=ROUTES, listeners=(TCP80,),
    iptables=filt("-A INPUT -p tcp -j CHK",
                  "-A INPUT -p tcp -j CHK",
                  "-A INPUT -p tcp --dport 80 -g GOTO1",
                  "-A INPUT -j ACCEPT",
                  "-A CHK -p tcp --dport 22 -j RETURN",
                  "-A CHK -s 10.1.0.2",
                  "-A CHK -j RETURN",
                  "-A CHK -j DROP",
                  "-A GOTO1 -j SUB",
                  "-A GOTO1 -s 10.1.0.2",
                  "-A SUB -j RETURN",
                  policy={"INPUT": "DROP"}, extra=":CHK - [0:0]\n:GOTO1 - [0:0]\n:SUB - [0:0]\n"),
    packets=(
        Send("in h0 tcp 10.1.0.2:40000 > 10.1.0.1:80",
             K("dropped", rules=("filter/INPUT#1", "filter/CHK#2", "filter/CHK#3",
                                 "filter/INPUT#2", "filter/CHK#2", "filter/CHK#3",
                                 "filter/INPUT#3", "filter/GOTO1#1", "filter/SUB#1",
                                 "filter/GOTO1#2"), reason="policy")),
        Send("in h0 tcp 10.1.0.2:40001 > 10.1.0.1:22",
             K("rejected", replies=("tcp-rst",),
               rules=("filter/INPUT#1", "filter/CHK#1", "filter/INPUT#2", "filter/CHK#1",
                      "filter/INPUT#4"))),
    ),
))

# ---------------------------------------------------------------------------------------------
# rulesets generated by real tools
# ---------------------------------------------------------------------------------------------

# ufw, confined: its rule templates are copied to a private --datadir, `ufw --datadir=...`
# writes the user rules there (it only edits files while not enabled), and ufw-init loads them
# with iptables-restore / ip6tables-restore inside the host namespace. sysctl loading is
# disabled (IPT_SYSCTL empty). Nothing outside the namespace and the temporary dir is touched.
UFW_SETUP = """
D=$(mktemp -d /run/kdufw.XXXXXX)
trap 'rm -rf "$D"' EXIT
mkdir -p "$D/etc/ufw/applications.d" "$D/etc/default" "$D/lib/ufw"
cp /usr/share/ufw/iptables/*.rules "$D/etc/ufw/"
printf 'ENABLED=no\\nLOGLEVEL=low\\n' > "$D/etc/ufw/ufw.conf"
printf '%s\n' 'IPV6=yes' 'DEFAULT_INPUT_POLICY="DROP"' 'DEFAULT_OUTPUT_POLICY="ACCEPT"' \
  'DEFAULT_FORWARD_POLICY="DROP"' 'DEFAULT_APPLICATION_POLICY="SKIP"' 'MANAGE_BUILTINS=no' \
  'IPT_SYSCTL=' 'IPT_MODULES=""' > "$D/etc/default/ufw"
ufw --datadir="$D" allow 22/tcp >/dev/null 2>&1
ufw --datadir="$D" allow from 10.1.0.0/24 to any port 53 proto udp >/dev/null 2>&1
ufw --datadir="$D" deny 23/tcp >/dev/null 2>&1
ufw --datadir="$D" reject 25/tcp >/dev/null 2>&1
sed -i 's/ENABLED=no/ENABLED=yes/' "$D/etc/ufw/ufw.conf"
/lib/ufw/ufw-init --datadir "$D" start >/dev/null
"""

add(Scenario(
    "ufw",
    "A ufw firewall (default deny incoming, allow 22/tcp, allow 53/udp from 10.1.0.0/24, deny "
    "23, reject 25) as ufw-init loads it; long chains of ufw-* user chains.",
    LINKS, setup=ROUTES + UFW_SETUP, tools=("ufw",),
    listeners=(Listener("tcp", "::", 22), UDP53, TCP80),
    packets=(
        Send("in h0 tcp 198.51.100.7:40000 > 10.1.0.1:22", K("delivered", replies=("syn-ack",))),
        Send("in h0 tcp 198.51.100.7:40001 > 10.1.0.1:23", K("dropped", replies=())),
        Send("in h0 tcp 198.51.100.7:40002 > 10.1.0.1:25", K("rejected", replies=("tcp-rst",))),
        Send("in h0 tcp 198.51.100.7:40003 > 10.1.0.1:80", K("dropped", replies=())),
        Send("in h0 udp 10.1.0.2:5000 > 10.1.0.1:53", K("delivered")),
        Send("in h1 udp 10.2.0.2:5001 > 10.2.0.1:53", K("dropped")),
        Send("in h0 icmp 198.51.100.7 > 10.1.0.1 type echo-request",
             K("delivered", replies=("icmp 0/0",))),
        Send("in h0 tcp [2001:db8:1::7]:40004 > [fd01::1]:22",
             K("delivered", replies=("syn-ack",))),
        Send("in h0 tcp 198.51.100.7:40000 > 10.1.0.1:22 flags A", K("delivered")),
        Send("local udp > 198.51.100.7:53", K("sent", "h0")),
    ),
))

DOCKER = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A POSTROUTING -s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE
-A DOCKER -i docker0 -j RETURN
-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-ISOLATION-STAGE-1 - [0:0]
:DOCKER-ISOLATION-STAGE-2 - [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A FORWARD -i docker0 -o docker0 -j ACCEPT
-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-1 -j RETURN
-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
-A DOCKER-ISOLATION-STAGE-2 -j RETURN
-A DOCKER-USER -j RETURN
COMMIT
"""

add(Scenario(
    "docker-style",
    "Docker's chains (as dockerd 24 writes them) for one container 172.17.0.2 publishing "
    "8080->80 on docker0 (a veth here): published port DNAT, un-NAT of the answer, masquerade "
    "of the container's own traffic, unpublished port hits the DROP policy.",
    (H0, Link("docker0", ("172.17.0.1/16",), ("172.17.0.2",))),
    setup=ROUTES.replace("ip route add 192.0.2.0/24 via 10.2.0.2 dev h1\n", "")
    .replace("ip -6 route add 2001:db8:2::/48 via fd02::2 dev h1\n", "") + FORWARD_ON,
    iptables=DOCKER,
    packets=(
        Send("in h0 tcp 198.51.100.7:40000 > 10.1.0.1:8080",
             K("forwarded", "docker0", dst="172.17.0.2", dport=80, ct="NEW",
               rules=("nat/PREROUTING#1", "nat/DOCKER#2", "filter/FORWARD#1",
                      "filter/DOCKER-USER#1", "filter/FORWARD#2",
                      "filter/DOCKER-ISOLATION-STAGE-1#2", "filter/FORWARD#4",
                      "filter/DOCKER#1"))),
        Send("in docker0 tcp 172.17.0.2:80 > 198.51.100.7:40000 flags SA",
             K("forwarded", "h0", src="10.1.0.1", sport=8080, ct="ESTABLISHED")),
        Send("in docker0 udp 172.17.0.2:5000 > 198.51.100.7:53",
             K("forwarded", "h0", src="10.1.0.1", ct="NEW")),
        Send("in h0 tcp 198.51.100.7:40001 > 172.17.0.2:81", K("dropped", ct="NEW")),
    ),
))

KUBE = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-EXT-WEB - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SEP-WEB1 - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-WEB - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-NODEPORTS -p tcp -m comment --comment "default/web" -m tcp --dport 30080 -j KUBE-EXT-WEB
-A KUBE-EXT-WEB -m comment --comment "masquerade traffic for default/web external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-WEB -j KUBE-SVC-WEB
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
-A KUBE-SEP-WEB1 -s 10.2.0.2/32 -m comment --comment "default/web" -j KUBE-MARK-MASQ
-A KUBE-SEP-WEB1 -p tcp -m comment --comment "default/web" -m tcp -j DNAT --to-destination 10.2.0.2:8080
-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment "default/web cluster IP" -m tcp --dport 80 -j KUBE-SVC-WEB
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-SVC-WEB ! -s 10.244.0.0/16 -d 10.96.0.10/32 -p tcp -m comment --comment "default/web cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ
-A KUBE-SVC-WEB -m comment --comment "default/web -> 10.2.0.2:8080" -j KUBE-SEP-WEB1
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-FORWARD - [0:0]
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
"""

add(Scenario(
    "kube-proxy-style",
    "kube-proxy (iptables mode) chains for a ClusterIP 10.96.0.10:80 and NodePort 30080 with one "
    "endpoint 10.2.0.2:8080: KUBE-MARK-MASQ, DNAT to the endpoint, masquerade by mark in "
    "KUBE-POSTROUTING (the mark is cleared first), and a locally originated connection.",
    LINKS, setup=ROUTES + FORWARD_ON, iptables=KUBE,
    packets=(
        Send("in h0 tcp 198.51.100.7:40000 > 10.96.0.10:80",
             K("forwarded", "h1", src="10.2.0.1", dst="10.2.0.2", dport=8080, ct="NEW",
               mark="0x0",
               rules=("nat/PREROUTING#1", "nat/KUBE-SERVICES#1", "nat/KUBE-SVC-WEB#1",
                      "nat/KUBE-MARK-MASQ#1", "nat/KUBE-SVC-WEB#2", "nat/KUBE-SEP-WEB1#2",
                      "filter/FORWARD#1", "filter/KUBE-FORWARD#2", "nat/POSTROUTING#1",
                      "nat/KUBE-POSTROUTING#2", "nat/KUBE-POSTROUTING#3"))),
        Send("in h1 tcp 10.2.0.2:8080 > 10.2.0.1:40000 flags SA",
             K("forwarded", "h0", src="10.96.0.10", sport=80, dst="198.51.100.7",
               dport=40000, ct="ESTABLISHED")),
        Send("in h0 tcp 198.51.100.7:40001 > 10.1.0.1:30080",
             K("forwarded", "h1", src="10.2.0.1", dst="10.2.0.2", dport=8080)),
        Send("local tcp :40100 > 10.96.0.10:80",
             K("sent", "h1", dst="10.2.0.2", dport=8080, src="10.2.0.1")),
    ),
))

# ---------------------------------------------------------------------------------------------
# native nftables and legacy iptables
# ---------------------------------------------------------------------------------------------

NFT_NATIVE = """
table inet kdfw {
  set allowed4 { type ipv4_addr; flags interval; elements = { 10.1.0.0/24, 198.51.100.0/25 } }
  chain input {
    type filter hook input priority filter; policy drop;
    ct state established,related counter accept
    ct state invalid counter drop
    iif "lo" accept
    tcp dport { 22, 80 } counter accept
    ip saddr @allowed4 udp dport 53 counter accept
    meta l4proto icmp counter accept
    meta l4proto ipv6-icmp counter accept
    tcp dport 25 counter reject with tcp reset
    counter reject with icmpx type admin-prohibited
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "h0" oifname "h1" tcp dport 443 counter accept
  }
}
table ip kdnat {
  chain pre {
    type nat hook prerouting priority dstnat;
    tcp dport 8443 counter dnat to 10.2.0.2:443
  }
  chain post {
    type nat hook postrouting priority srcnat;
    oifname "h1" counter masquerade
  }
}
"""

add(Scenario(
    "nft-native",
    "A native nftables ruleset (inet filter with a set, ct state, reject variants; ip nat with "
    "dnat and masquerade), no iptables at all.",
    LINKS, setup=ROUTES + FORWARD_ON, nft=NFT_NATIVE, listeners=(TCP80, UDP53),
    packets=(
        Send("in h0 tcp 198.51.100.7:40000 > 10.1.0.1:80",
             K("delivered", replies=("syn-ack",), ct="NEW", rules=("native:kdfw/input#4",))),
        Send("in h0 udp 10.1.0.2:5000 > 10.1.0.1:53",
             K("delivered", rules=("native:kdfw/input#5",))),
        Send("in h0 udp 198.51.100.200:5001 > 10.1.0.1:53",
             K("rejected", replies=("icmp 3/13",), rules=("native:kdfw/input#9",))),
        Send("in h0 tcp 198.51.100.7:40001 > 10.1.0.1:25",
             K("rejected", replies=("tcp-rst",), rules=("native:kdfw/input#8",))),
        Send("in h0 tcp [2001:db8:1::7]:40002 > [fd01::1]:23",
             K("rejected", replies=("icmpv6 1/1",), rules=("native:kdfw/input#9",))),
        Send("in h0 tcp 198.51.100.7:40003 > 10.1.0.1:8443",
             K("forwarded", "h1", dst="10.2.0.2", dport=443, src="10.2.0.1",
               rules=("native:kdnat/pre#1", "native:kdfw/forward#2", "native:kdnat/post#1"))),
        Send("in h1 tcp 10.2.0.2:443 > 10.2.0.1:40003 flags SA",
             K("forwarded", "h0", src="10.1.0.1", sport=8443, dst="198.51.100.7",
               rules=("native:kdfw/forward#1",))),
    ),
))

add(Scenario(
    "iptables-legacy",
    "Rules in legacy x_tables (iptables-legacy) and in iptables-nft both run: a legacy DROP "
    "wins over an nft ACCEPT, legacy rules are counted (iptables-legacy-save -c). Legacy is "
    "loaded first, as when a legacy tool ran at boot.",
    LINKS, setup=ROUTES, listeners=(TCP80, UDP53),
    iptables=filt("-A INPUT -p tcp -j ACCEPT", "-A INPUT -p udp --dport 53"),
    iptables_legacy=filt("-A INPUT -p tcp --dport 23 -j DROP", "-A INPUT -p udp --dport 53"),
    packets=(
        Send("in h0 tcp 10.1.0.2:40000 > 10.1.0.1:23",
             K("dropped", rules=("filter/INPUT#1", "legacy:filter/INPUT#1"))),
        Send("in h0 tcp 10.1.0.2:40001 > 10.1.0.1:80",
             K("delivered", replies=("syn-ack",), rules=("filter/INPUT#1",))),
        Send("in h0 udp 10.1.0.2:5000 > 10.1.0.1:53",
             K("delivered", rules=("filter/INPUT#2", "legacy:filter/INPUT#2"))),
    ),
))
