"""Kernel differential scenarios for netfilter, conntrack and NAT edge cases (data only).

Standard topology of ``tests.kernel.scenarios`` (h0 10.1.0.1/24 towards 10.1.0.2 and the default
route, h1 10.2.0.1/24 towards 10.2.0.2 and 192.0.2.0/24) unless a scenario says otherwise. Every
``Send`` states the kernel result observed in namespaces on this machine; the engine must agree.
"""

from __future__ import annotations

from tests.kernel.harness import K, Link, Scenario, Send
from tests.kernel.scenarios import FORWARD_ON, H0, LINKS, ROUTES, TCP80, UDP53, filt, table

SCENARIOS: list[Scenario] = []


def add(sc: Scenario) -> Scenario:
    SCENARIOS.append(sc)
    return sc


# H1 with a second server (10.2.0.3) on the LAN, for hairpin NAT
H1_LAN = Link("h1", ("10.2.0.1/24", "fd02::1/64"), ("10.2.0.2", "10.2.0.3", "fd02::2", "fd02::3"))

# ---------------------------------------------------------------------------------------------
# NAT
# ---------------------------------------------------------------------------------------------

add(Scenario(
    "q-nat-hairpin",
    "Hairpin NAT: a LAN client (10.2.0.2 on h1) connects to the router's public address "
    "10.1.0.1:8080, DNATed to a LAN server 10.2.0.3:80 and masqueraded so the answer comes back "
    "through the router; the SYN-ACK is un-NATed twice (source 10.1.0.1:8080, destination the "
    "client). Out of the interface it came in on.",
    (H0, H1_LAN), setup=ROUTES + FORWARD_ON,
    iptables=table("nat",
                   "-A PREROUTING -d 10.1.0.1 -p tcp --dport 8080 -j DNAT --to-destination 10.2.0.3:80",
                   "-A POSTROUTING -s 10.2.0.0/24 -d 10.2.0.3 -p tcp --dport 80 -j MASQUERADE")
    + filt("-A FORWARD -m conntrack --ctstate DNAT -j ACCEPT", policy={"FORWARD": "DROP"}),
    packets=(
        Send("in h1 tcp 10.2.0.2:40000 > 10.1.0.1:8080 flags S",
             K("forwarded", "h1", ct="NEW", src="10.2.0.1", sport=40000, dst="10.2.0.3",
               dport=80, rules=("nat/PREROUTING#1", "filter/FORWARD#1", "nat/POSTROUTING#1"))),
        Send("in h1 tcp 10.2.0.3:80 > 10.2.0.1:40000 flags SA",
             K("forwarded", "h1", ct="ESTABLISHED", src="10.1.0.1", sport=8080, dst="10.2.0.2",
               dport=40000, rules=("filter/FORWARD#1",))),
        Send("in h1 tcp 10.2.0.2:40000 > 10.1.0.1:8080 flags A",
             K("forwarded", "h1", ct="ESTABLISHED", src="10.2.0.1", dst="10.2.0.3",
               rules=("filter/FORWARD#1",))),
    ),
))

add(Scenario(
    "q-nat-dnat-localhost",
    "PREROUTING DNAT to 127.0.0.1: delivered when route_localnet=1 on the incoming interface "
    "(h0), a martian destination (dropped after the nat rule) on h1 where route_localnet=0.",
    LINKS, setup=ROUTES + "sysctl -qw net.ipv4.conf.h0.route_localnet=1\n",
    listeners=(UDP53,),
    iptables=table("nat", "-A PREROUTING -p udp --dport 5353 -j DNAT --to-destination 127.0.0.1:53"),
    packets=(
        Send("in h0 udp 10.1.0.2:5000 > 10.1.0.1:5353",
             K("delivered", ct="NEW", dst="127.0.0.1", dport=53, rules=("nat/PREROUTING#1",))),
        Send("in h1 udp 10.2.0.2:5000 > 10.2.0.1:5353",
             K("dropped", ct="NEW", rules=("nat/PREROUTING#1",))),
    ),
))

add(Scenario(
    "q-nat-output-redirect",
    "nat OUTPUT: REDIRECT --to-ports of a local connection goes to 127.0.0.1 through lo, keeping "
    "the source the first route lookup chose; DNAT of local UDP and the reply to a closed port "
    "(ICMP port unreachable, the error itself RELATED to the NATed flow).",
    LINKS, setup=ROUTES, listeners=(TCP80,),
    iptables=table("nat", "-A OUTPUT -p tcp --dport 8080 -j REDIRECT --to-ports 80",
                   "-A OUTPUT -p udp --dport 99 -j DNAT --to-destination 192.0.2.10:53"),
    packets=(
        Send("local tcp :40000 > 198.51.100.7:8080",
             K("delivered", replies=("syn-ack",), ct="NEW", rules=("nat/OUTPUT#1",),
               src="10.1.0.1", dst="127.0.0.1", dport=80)),
        Send("local udp :40001 > 198.51.100.7:99",
             K("sent", "h1", ct="NEW", rules=("nat/OUTPUT#2",), src="10.1.0.1",
               dst="192.0.2.10", dport=53)),
        Send("in h1 udp 192.0.2.10:53 > 10.1.0.1:40001",
             K("rejected", ct="ESTABLISHED", replies=("icmp 3/3",), rules=())),
    ),
))

add(Scenario(
    "q-nat-snat-collision",
    "SNAT to a single address:port: the second flow whose reply tuple would be the same as the "
    "first's cannot be made unique; a flow to another destination reuses the same port.",
    LINKS, setup=ROUTES + FORWARD_ON,
    iptables=table("nat", "-A POSTROUTING -o h1 -p udp -j SNAT --to-source 10.2.0.1:61000"),
    packets=(
        Send("in h0 udp 198.51.100.7:5000 > 192.0.2.10:53",
             K("forwarded", "h1", ct="NEW", src="10.2.0.1", sport=61000)),
        Send("in h0 udp 198.51.100.8:5000 > 192.0.2.11:53",
             K("forwarded", "h1", ct="NEW", src="10.2.0.1", sport=61000)),
        Send("in h0 udp 198.51.100.9:5000 > 192.0.2.10:53",
             K("dropped", ct="NEW", rules=("nat/POSTROUTING#1",)),
             note="reply tuple 192.0.2.10:53 -> 10.2.0.1:61000 is taken by the first flow"),
        Send("in h1 udp 192.0.2.10:53 > 10.2.0.1:61000",
             K("forwarded", "h0", ct="ESTABLISHED", dst="198.51.100.7", dport=5000)),
    ),
))

add(Scenario(
    "q-nat-masquerade-addrs",
    "MASQUERADE on an interface with several addresses picks the primary address of the "
    "gateway's subnet (inet_select_addr), not the route's preferred source; for a gateway-less "
    "route the first primary address.",
    (H0, Link("h1", ("10.9.0.1/24", "10.2.0.1/24", "10.2.0.5/24"), ("10.2.0.2", "10.9.0.2"))),
    setup="""
ip route add default via 10.1.0.2 dev h0
ip route add 192.0.2.0/24 via 10.2.0.2 dev h1 src 10.2.0.5
ip route add 203.0.113.0/24 via 10.9.0.2 dev h1
ip route add 203.0.114.0/24 dev h1 scope link
ip neigh replace 203.0.114.5 lladdr 02:00:00:00:01:02 dev h1 nud permanent
""" + FORWARD_ON,
    iptables=table("nat", "-A POSTROUTING -o h1 -j MASQUERADE"),
    packets=(
        Send("in h0 udp 198.51.100.7:5000 > 192.0.2.10:53", K("forwarded", "h1", src="10.2.0.1")),
        Send("in h0 udp 198.51.100.7:5001 > 203.0.113.5:53", K("forwarded", "h1", src="10.9.0.1")),
        Send("in h0 udp 198.51.100.7:5002 > 203.0.114.5:53", K("forwarded", "h1", src="10.9.0.1")),
        Send("local udp > 192.0.2.10:53", K("sent", "h1", src="10.2.0.1"),
             note="the route chose 10.2.0.5, MASQUERADE rewrites it to 10.2.0.1"),
    ),
))

add(Scenario(
    "q-nat-return-chains",
    "nat chains: a user chain RETURNs for one source (no DNAT, the packet goes to the local "
    "port); an ACCEPT in nat PREROUTING ends the nat table; later packets of a flow skip nat.",
    LINKS, setup=ROUTES + FORWARD_ON, listeners=(TCP80,),
    iptables=table("nat", "-A PREROUTING -p tcp -j PF",
                   "-A PREROUTING -p tcp --dport 8080 -j DNAT --to-destination 10.2.0.2:81",
                   "-A PF -s 198.51.100.8 -j RETURN",
                   "-A PF -s 198.51.100.9 -j ACCEPT",
                   "-A PF -p tcp --dport 8080 -j DNAT --to-destination 10.2.0.2:80",
                   chains=("PF",)),
    packets=(
        Send("in h0 tcp 198.51.100.7:40000 > 10.1.0.1:8080",
             K("forwarded", "h1", dst="10.2.0.2", dport=80,
               rules=("nat/PREROUTING#1", "nat/PF#3"))),
        Send("in h0 tcp 198.51.100.8:40000 > 10.1.0.1:8080",
             K("forwarded", "h1", dst="10.2.0.2", dport=81,
               rules=("nat/PREROUTING#1", "nat/PF#1", "nat/PREROUTING#2"))),
        Send("in h0 tcp 198.51.100.9:40000 > 10.1.0.1:8080",
             K("rejected", replies=("tcp-rst",), rules=("nat/PREROUTING#1", "nat/PF#2"))),
        Send("in h0 tcp 198.51.100.7:40000 > 10.1.0.1:8080 flags A",
             K("rejected", replies=("tcp-rst",), ct="INVALID", rules=()),
             note="an ACK before any SYN-ACK on a SYN_SENT entry is INVALID: not NATed, so it "
                  "goes to the local port 8080"),
    ),
))

add(Scenario(
    "q-nat-ctstate-dnat",
    "conntrack match on a DNATed flow: --ctstate DNAT, --ctorigdst/--ctorigdstport, "
    "--ctreplsrc, --ctstatus CONFIRMED (not yet on the first packet) and ASSURED, --ctdir.",
    LINKS, setup=ROUTES + FORWARD_ON,
    iptables=table("nat", "-A PREROUTING -p tcp --dport 8080 -j DNAT --to-destination 10.2.0.2:80")
    + filt("-A FORWARD -m conntrack --ctstate DNAT",
           "-A FORWARD -m conntrack --ctstate SNAT",
           "-A FORWARD -m conntrack --ctorigdst 10.1.0.1 --ctorigdstport 8080",
           "-A FORWARD -m conntrack --ctreplsrc 10.2.0.2 --ctreplsrcport 80",
           "-A FORWARD -m conntrack --ctstatus CONFIRMED",
           "-A FORWARD -m conntrack --ctstatus ASSURED",
           "-A FORWARD -m conntrack --ctstatus SEEN_REPLY",
           "-A FORWARD -m conntrack --ctdir ORIGINAL",
           "-A FORWARD -m conntrack ! --ctstate NEW --ctdir REPLY"),
    packets=(
        Send("in h0 tcp 198.51.100.7:40000 > 10.1.0.1:8080 flags S",
             K("forwarded", "h1", ct="NEW",
               rules=("nat/PREROUTING#1", "filter/FORWARD#1", "filter/FORWARD#3",
                      "filter/FORWARD#4", "filter/FORWARD#8"))),
        Send("in h1 tcp 10.2.0.2:80 > 198.51.100.7:40000 flags SA",
             K("forwarded", "h0", ct="ESTABLISHED",
               rules=("filter/FORWARD#1", "filter/FORWARD#3", "filter/FORWARD#4",
                      "filter/FORWARD#5", "filter/FORWARD#7", "filter/FORWARD#9"))),
        Send("in h0 tcp 198.51.100.7:40000 > 10.1.0.1:8080 flags A",
             K("forwarded", "h1", ct="ESTABLISHED",
               rules=("filter/FORWARD#1", "filter/FORWARD#3", "filter/FORWARD#4",
                      "filter/FORWARD#5", "filter/FORWARD#6", "filter/FORWARD#7",
                      "filter/FORWARD#8"))),
    ),
))

add(Scenario(
    "q-nat-icmp",
    "Masqueraded ICMP echo: the reply is un-NATed by its id; an ICMP time exceeded from a "
    "router behind h1 quoting a masqueraded UDP packet is RELATED and its outer destination is "
    "translated back to the client.",
    LINKS, setup=ROUTES + FORWARD_ON,
    iptables=table("nat", "-A POSTROUTING -o h1 -j MASQUERADE")
    + filt("-A FORWARD -m conntrack --ctstate RELATED", "-A FORWARD -p icmp"),
    packets=(
        Send("in h0 icmp 198.51.100.7 > 192.0.2.10 type echo-request id 77",
             K("forwarded", "h1", ct="NEW", src="10.2.0.1",
               rules=("filter/FORWARD#2", "nat/POSTROUTING#1"))),
        Send("in h1 icmp 192.0.2.10 > 10.2.0.1 type echo-reply id 77",
             K("forwarded", "h0", ct="ESTABLISHED", dst="198.51.100.7",
               rules=("filter/FORWARD#2",))),
        Send("in h0 udp 198.51.100.7:5000 > 192.0.2.10:33434",
             K("forwarded", "h1", ct="NEW", src="10.2.0.1", rules=("nat/POSTROUTING#1",))),
        Send("in h1 icmp 10.2.0.2 > 10.2.0.1 type time-exceeded", quote=True,
             expect=K("forwarded", "h0", ct="RELATED", src="10.2.0.2", dst="198.51.100.7",
                      rules=("filter/FORWARD#1", "filter/FORWARD#2"))),
    ),
))

add(Scenario(
    "q-nat-netmap-ipv6",
    "NETMAP maps a whole prefix keeping the host part (IPv4 PREROUTING and POSTROUTING); IPv6 "
    "DNAT and MASQUERADE with a global and a ULA address on the egress.",
    (H0, Link("h1", ("10.2.0.1/24", "fd02::1/64", "2001:db8:99::1/64"),
              ("10.2.0.2", "fd02::2", "2001:db8:99::2"))),
    setup=ROUTES + FORWARD_ON + "ip -6 route add 2001:db8:5::/48 via 2001:db8:99::2 dev h1\n",
    iptables=table("nat", "-A PREROUTING -d 10.77.0.0/24 -j NETMAP --to 192.0.2.0/24",
                   "-A POSTROUTING -o h1 -s 198.51.100.0/24 -j NETMAP --to 10.88.0.0/24"),
    ip6tables=table("nat",
                    "-A PREROUTING -i h0 -p udp --dport 5353 -j DNAT --to-destination [fd02::2]:53",
                    "-A POSTROUTING -o h1 -j MASQUERADE"),
    packets=(
        Send("in h0 udp 198.51.100.7:5000 > 10.77.0.9:53",
             K("forwarded", "h1", src="10.88.0.7", dst="192.0.2.9",
               rules=("nat/PREROUTING#1", "nat/POSTROUTING#1"))),
        Send("in h1 udp 192.0.2.9:53 > 10.88.0.7:5000",
             K("forwarded", "h0", src="10.77.0.9", dst="198.51.100.7", rules=())),
        Send("in h0 udp [2001:db8:1::7]:5000 > [fd01::1]:5353",
             K("forwarded", "h1", src="fd02::1", dst="fd02::2", dport=53)),
        Send("in h0 udp [2001:db8:1::7]:5001 > [2001:db8:5::9]:53",
             K("forwarded", "h1", src="2001:db8:99::1")),
    ),
))

# ---------------------------------------------------------------------------------------------
# conntrack
# ---------------------------------------------------------------------------------------------

CT_FWD = filt(
    "-A FORWARD -m conntrack --ctstate INVALID -j DROP",
    "-A FORWARD -m conntrack --ctstate ESTABLISHED -j ACCEPT",
    "-A FORWARD -m conntrack --ctstate NEW -j ACCEPT",
    policy={"FORWARD": "DROP"},
)

add(Scenario(
    "q-ct-tcp-lifecycle",
    "TCP flow through a stateful FORWARD chain: a second SYN on an ESTABLISHED flow, a FIN "
    "exchange (all ESTABLISHED), then a new SYN on the same tuple in TIME_WAIT (NEW again); a "
    "RST in the middle of another flow and a new SYN after it (NEW).",
    LINKS, setup=ROUTES + FORWARD_ON, iptables=CT_FWD,
    packets=(
        Send("in h0 tcp 198.51.100.7:40000 > 192.0.2.10:80 flags S",
             K("forwarded", "h1", ct="NEW", rules=("filter/FORWARD#3",))),
        Send("in h1 tcp 192.0.2.10:80 > 198.51.100.7:40000 flags SA",
             K("forwarded", "h0", ct="ESTABLISHED", rules=("filter/FORWARD#2",))),
        Send("in h0 tcp 198.51.100.7:40000 > 192.0.2.10:80 flags A",
             K("forwarded", "h1", ct="ESTABLISHED", rules=("filter/FORWARD#2",))),
        Send("in h0 tcp 198.51.100.7:40000 > 192.0.2.10:80 flags S",
             K("forwarded", "h1", ct="ESTABLISHED", rules=("filter/FORWARD#2",))),
        Send("in h0 tcp 198.51.100.7:40000 > 192.0.2.10:80 flags FA",
             K("forwarded", "h1", ct="ESTABLISHED", rules=("filter/FORWARD#2",))),
        Send("in h1 tcp 192.0.2.10:80 > 198.51.100.7:40000 flags FA",
             K("forwarded", "h0", ct="ESTABLISHED", rules=("filter/FORWARD#2",))),
        Send("in h0 tcp 198.51.100.7:40000 > 192.0.2.10:80 flags A",
             K("forwarded", "h1", ct="ESTABLISHED", rules=("filter/FORWARD#2",))),
        Send("in h0 tcp 198.51.100.7:40000 > 192.0.2.10:80 flags S",
             K("forwarded", "h1", ct="NEW", rules=("filter/FORWARD#3",))),
        Send("in h0 tcp 198.51.100.7:40001 > 192.0.2.10:80 flags S",
             K("forwarded", "h1", ct="NEW", rules=("filter/FORWARD#3",))),
        Send("in h1 tcp 192.0.2.10:80 > 198.51.100.7:40001 flags SA",
             K("forwarded", "h0", ct="ESTABLISHED", rules=("filter/FORWARD#2",))),
        Send("in h0 tcp 198.51.100.7:40001 > 192.0.2.10:80 flags R",
             K("forwarded", "h1", ct="ESTABLISHED", rules=("filter/FORWARD#2",))),
        Send("in h0 tcp 198.51.100.7:40001 > 192.0.2.10:80 flags S",
             K("forwarded", "h1", ct="NEW", rules=("filter/FORWARD#3",))),
    ),
))

add(Scenario(
    "q-ct-zone-notrack",
    "CT --zone separates the two directions of a flow (the answer arriving on h1 is in zone 2, "
    "so it is NEW, not ESTABLISHED); without a zone the answer is ESTABLISHED. CT --notrack "
    "makes a packet UNTRACKED.",
    LINKS, setup=ROUTES + FORWARD_ON,
    iptables=table("raw", "-A PREROUTING -i h0 -p udp --dport 53 -j CT --zone 1",
                   "-A PREROUTING -i h1 -p udp --sport 53 -j CT --zone 2",
                   "-A PREROUTING -p udp --dport 123 -j CT --notrack")
    + filt("-A FORWARD -m conntrack --ctstate NEW", "-A FORWARD -m conntrack --ctstate ESTABLISHED",
           "-A FORWARD -m conntrack --ctstate UNTRACKED"),
    packets=(
        Send("in h0 udp 198.51.100.7:5000 > 192.0.2.10:53",
             K("forwarded", "h1", ct="NEW", rules=("raw/PREROUTING#1", "filter/FORWARD#1"))),
        Send("in h1 udp 192.0.2.10:53 > 198.51.100.7:5000",
             K("forwarded", "h0", ct="NEW", rules=("raw/PREROUTING#2", "filter/FORWARD#1"))),
        Send("in h0 udp 198.51.100.7:5000 > 192.0.2.10:54",
             K("forwarded", "h1", ct="NEW", rules=("filter/FORWARD#1",))),
        Send("in h1 udp 192.0.2.10:54 > 198.51.100.7:5000",
             K("forwarded", "h0", ct="ESTABLISHED", rules=("filter/FORWARD#2",))),
        Send("in h0 udp 198.51.100.7:5000 > 192.0.2.10:123",
             K("forwarded", "h1", ct="UNTRACKED", rules=("raw/PREROUTING#3", "filter/FORWARD#3"))),
    ),
))

add(Scenario(
    "q-ct-snapshot-entries",
    "Conntrack entries that exist when the snapshot is taken (inserted with conntrack -I): the "
    "next packet of those flows is ESTABLISHED (TCP mid-stream, UDP reply direction), and the "
    "entry's mark is restored by CONNMARK.",
    LINKS, setup=ROUTES + FORWARD_ON + """
conntrack -I -p tcp -s 198.51.100.7 -d 192.0.2.10 --sport 40000 --dport 80 --state ESTABLISHED -t 600 -u SEEN_REPLY,ASSURED -m 0x5 >/dev/null 2>&1
conntrack -I -p udp -s 198.51.100.7 -d 192.0.2.10 --sport 5000 --dport 53 -t 600 -u SEEN_REPLY >/dev/null 2>&1
""",
    iptables=table("mangle", "-A PREROUTING -j CONNMARK --restore-mark")
    + filt("-A FORWARD -m conntrack --ctstate ESTABLISHED -m mark --mark 0x5 -j ACCEPT",
           "-A FORWARD -m conntrack --ctstate ESTABLISHED -j ACCEPT",
           policy={"FORWARD": "DROP"}),
    packets=(
        Send("in h0 tcp 198.51.100.7:40000 > 192.0.2.10:80 flags A",
             K("forwarded", "h1", ct="ESTABLISHED", mark="0x5",
               rules=("mangle/PREROUTING#1", "filter/FORWARD#1"))),
        Send("in h1 udp 192.0.2.10:53 > 198.51.100.7:5000",
             K("forwarded", "h0", ct="ESTABLISHED",
               rules=("mangle/PREROUTING#1", "filter/FORWARD#2"))),
        Send("in h0 udp 198.51.100.7:5001 > 192.0.2.10:53",
             K("dropped", ct="NEW", rules=("mangle/PREROUTING#1",))),
    ),
))

add(Scenario(
    "q-ct-connmark-masks",
    "CONNMARK with masks (save: ctmark = (ctmark & ~ctmask) ^ (mark & nfmask); restore: "
    "mark = (mark & ~nfmask) ^ (ctmark & ctmask)) and MARK --or/--and/--xor chains, matched on "
    "the reply.",
    LINKS, setup=ROUTES + FORWARD_ON,
    iptables=table("mangle",
                   "-A PREROUTING -m conntrack --ctstate NEW -j CONNMARK --set-mark 0x30",
                   "-A PREROUTING -m conntrack --ctstate NEW -j MARK --set-mark 0x21",
                   "-A PREROUTING -m conntrack --ctstate NEW -j CONNMARK --save-mark --nfmask 0xff --ctmask 0xf",
                   "-A PREROUTING -m connmark --mark 0x11",
                   "-A PREROUTING -m conntrack --ctstate ESTABLISHED -j MARK --set-mark 0x700",
                   "-A PREROUTING -m conntrack --ctstate ESTABLISHED -j CONNMARK --restore-mark --nfmask 0xff --ctmask 0xf",
                   "-A PREROUTING -m mark --mark 0x701",
                   "-A FORWARD -j MARK --or-mark 0x1000",
                   "-A FORWARD -j MARK --and-mark 0x10ff",
                   "-A FORWARD -j MARK --xor-mark 0x3",
                   "-A POSTROUTING -m mark --mark 0x1022"),
    packets=(
        Send("in h0 tcp 198.51.100.7:40000 > 192.0.2.10:80 flags S",
             K("forwarded", "h1", ct="NEW", mark="0x1022",
               rules=("mangle/PREROUTING#1", "mangle/PREROUTING#2", "mangle/PREROUTING#3",
                      "mangle/PREROUTING#4", "mangle/FORWARD#1", "mangle/FORWARD#2",
                      "mangle/FORWARD#3", "mangle/POSTROUTING#1"))),
        Send("in h1 tcp 192.0.2.10:80 > 198.51.100.7:40000 flags SA",
             K("forwarded", "h0", ct="ESTABLISHED", mark="0x1002",
               rules=("mangle/PREROUTING#4", "mangle/PREROUTING#5", "mangle/PREROUTING#6",
                      "mangle/PREROUTING#7", "mangle/FORWARD#1", "mangle/FORWARD#2",
                      "mangle/FORWARD#3"))),
    ),
))

# ---------------------------------------------------------------------------------------------
# matches and targets
# ---------------------------------------------------------------------------------------------

add(Scenario(
    "q-match-ranges-negations",
    "multiport with ranges and !, iprange with !, length boundaries, ttl gt/lt, pkttype and "
    "addrtype for multicast and broadcast.",
    LINKS, setup=ROUTES, listeners=(TCP80, UDP53),
    iptables=filt(
        "-A INPUT -p tcp -m multiport --dports 20:25,80,8000:8080",
        "-A INPUT -p tcp -m multiport ! --dports 20:25,80",
        "-A INPUT -m iprange ! --src-range 10.1.0.2-10.1.0.9",
        "-A INPUT -m iprange --src-range 10.1.0.2-10.1.0.9 ! --dst-range 10.1.0.1-10.1.0.1",
        "-A INPUT -m length --length 60",
        "-A INPUT -m length ! --length 61:65535",
        "-A INPUT -m ttl --ttl-gt 63",
        "-A INPUT -m ttl --ttl-lt 64",
        "-A INPUT -m pkttype --pkt-type multicast",
        "-A INPUT -m addrtype --dst-type MULTICAST",
        "-A INPUT -p tcp -m multiport --ports 8080",
        "-A INPUT -m pkttype --pkt-type broadcast",
        "-A INPUT -m addrtype --dst-type BROADCAST",
    ),
    packets=(
        Send("in h0 tcp 10.1.0.2:40000 > 10.1.0.1:8080 flags S len 60",
             K("rejected", replies=("tcp-rst",),
               rules=("filter/INPUT#1", "filter/INPUT#2", "filter/INPUT#5", "filter/INPUT#6",
                      "filter/INPUT#7", "filter/INPUT#11"))),
        Send("in h0 tcp 10.1.0.2:8080 > 10.2.0.1:80 flags S len 61 ttl 63",
             K("delivered", replies=("syn-ack",),
               rules=("filter/INPUT#1", "filter/INPUT#4", "filter/INPUT#8",
                      "filter/INPUT#11"))),
        Send("in h0 udp 10.1.0.10:5000 > 224.0.0.1:53 mac 01:00:5e:00:00:01 ttl 1",
             K("delivered", rules=("filter/INPUT#3", "filter/INPUT#6", "filter/INPUT#8",
                                   "filter/INPUT#9", "filter/INPUT#10"))),
        Send("in h0 udp 10.1.0.2:5001 > 255.255.255.255:53 mac ff:ff:ff:ff:ff:ff",
             K("delivered", rules=("filter/INPUT#4", "filter/INPUT#6", "filter/INPUT#7",
                                   "filter/INPUT#12", "filter/INPUT#13"))),
    ),
))

add(Scenario(
    "q-match-addrtype-output",
    "addrtype in OUTPUT with --limit-iface-out: an address is LOCAL only on the interface whose "
    "local route holds it (h1's address leaving through h0 is not); without the option any "
    "local address is.",
    LINKS, setup=ROUTES, listeners=(UDP53,),
    iptables=filt("-A OUTPUT -m addrtype --src-type LOCAL --limit-iface-out",
                  "-A OUTPUT -m addrtype --src-type LOCAL",
                  "-A OUTPUT -m addrtype --dst-type LOCAL --limit-iface-out",
                  "-A OUTPUT -m addrtype --dst-type LOCAL",
                  "-A OUTPUT -m addrtype --dst-type UNICAST --limit-iface-out"),
    packets=(
        Send("local udp 10.1.0.1:40000 > 198.51.100.7:53",
             K("sent", "h0", rules=("filter/OUTPUT#1", "filter/OUTPUT#2", "filter/OUTPUT#5"))),
        Send("local udp 10.2.0.1:40001 > 198.51.100.7:53",
             K("sent", "h0", rules=("filter/OUTPUT#2", "filter/OUTPUT#5"))),
        Send("local udp 10.1.0.1:40002 > 10.2.0.1:53",
             K("delivered", rules=("filter/OUTPUT#2", "filter/OUTPUT#4", "filter/OUTPUT#5"))),
    ),
))

add(Scenario(
    "q-target-header-rewrite",
    "TTL --ttl-inc in mangle FORWARD (after the forward decrement), DSCP class, CLASSIFY (no "
    "header change), TCPMSS on a SYN, ip6tables HL --hl-inc and hl matches.",
    LINKS, setup=ROUTES + FORWARD_ON,
    iptables=table("mangle", "-A FORWARD -p udp -j TTL --ttl-inc 5",
                   "-A FORWARD -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss 1200",
                   "-A POSTROUTING -p udp -j DSCP --set-dscp-class AF21",
                   "-A POSTROUTING -j CLASSIFY --set-class 1:10",
                   "-A POSTROUTING -m ttl --ttl-eq 68"),
    ip6tables=table("mangle", "-A PREROUTING -m hl --hl-lt 10",
                    "-A FORWARD -j HL --hl-inc 2",
                    "-A POSTROUTING -m hl --hl-eq 10"),
    packets=(
        Send("in h0 udp 198.51.100.7:5000 > 192.0.2.10:53",
             K("forwarded", "h1", ttl=68, tos="0x48",
               rules=("mangle/FORWARD#1", "mangle/POSTROUTING#1", "mangle/POSTROUTING#2",
                      "mangle/POSTROUTING#3"))),
        Send("in h0 tcp 198.51.100.7:40000 > 192.0.2.10:80 flags S",
             K("forwarded", "h1", ttl=63, tos="0x0",
               rules=("mangle/FORWARD#2", "mangle/POSTROUTING#2"))),
        Send("in h0 udp [2001:db8:1::7]:5000 > [2001:db8:2::10]:53 hlim 9",
             K("forwarded", "h1", ttl=10,
               rules=("mangle/PREROUTING#1", "mangle/FORWARD#1", "mangle/POSTROUTING#1"))),
    ),
))

add(Scenario(
    "q-chains-goto-nested",
    "-g from a user chain: the end of the goto target returns to the caller of the chain that "
    "jumped (the base chain), skipping the rest of the middle chain; -j returns to the middle "
    "chain; goto chained twice.",
    LINKS, setup=ROUTES, listeners=(UDP53,),
    iptables=filt("-A INPUT -p udp -j A",
                  "-A INPUT -p udp -j ACCEPT",
                  "-A A -p udp -m multiport --dports 53,56 -g B",
                  "-A A -p udp --dport 54 -j B",
                  "-A A -p udp -j DROP",
                  "-A B -p udp --dport 53",
                  "-A B -p udp --dport 54",
                  "-A B -p udp --dport 56 -g C",
                  "-A C -p udp",
                  policy={"INPUT": "DROP"}, extra=":A - [0:0]\n:B - [0:0]\n:C - [0:0]\n"),
    packets=(
        Send("in h0 udp 10.1.0.2:5000 > 10.1.0.1:53",
             K("delivered", rules=("filter/INPUT#1", "filter/A#1", "filter/B#1",
                                   "filter/INPUT#2"))),
        Send("in h0 udp 10.1.0.2:5001 > 10.1.0.1:54",
             K("dropped", rules=("filter/INPUT#1", "filter/A#2", "filter/B#2", "filter/A#3"))),
        Send("in h0 udp 10.1.0.2:5002 > 10.1.0.1:56",
             K("rejected", replies=("icmp 3/3",),
               rules=("filter/INPUT#1", "filter/A#1", "filter/B#3", "filter/C#1",
                      "filter/INPUT#2"))),
    ),
))

add(Scenario(
    "q-nft-mixed-hook",
    "A native nft chain with ct state beside iptables-nft rules on the same input hook at the "
    "same priority (the table created later -- the higher table handle -- runs first, so the "
    "iptables rule sees the mark the nft chain set); nft ct mark set on the request, meta mark "
    "set from it on the reply, seen by iptables-nft FORWARD.",
    LINKS, setup=ROUTES + FORWARD_ON, listeners=(UDP53,),
    iptables=filt("-A INPUT -p udp -m conntrack --ctstate NEW",
                  "-A INPUT -p udp -m mark --mark 0x9",
                  "-A FORWARD -m mark --mark 0x42"),
    nft="""
table inet qmix {
  chain qin {
    type filter hook input priority filter; policy accept;
    ct state new counter
    udp dport 53 meta mark 0 counter
    udp dport 53 meta mark set 0x9
  }
  chain qfwd {
    type filter hook forward priority filter; policy accept;
    ct state new ct mark set 0x42
    ct direction reply meta mark set ct mark
  }
}
""",
    packets=(
        Send("in h0 udp 10.1.0.2:5000 > 10.1.0.1:53",
             K("delivered", ct="NEW", rules=("native:qmix/qin#1", "native:qmix/qin#2",
                                             "native:qmix/qin#3", "filter/INPUT#1",
                                             "filter/INPUT#2"))),
        Send("in h0 udp 198.51.100.7:5003 > 192.0.2.10:53",
             K("forwarded", "h1", ct="NEW", mark="0x0", rules=("native:qmix/qfwd#1",))),
        Send("in h1 udp 192.0.2.10:53 > 198.51.100.7:5003",
             K("forwarded", "h0", ct="ESTABLISHED", mark="0x42",
               rules=("native:qmix/qfwd#2", "filter/FORWARD#1"))),
    ),
))

add(Scenario(
    "q-legacy-nft-nat",
    "nat rules in both iptables-legacy and iptables-nft on PREROUTING: once one nat table has "
    "bound the flow, the other nat tables of the hook are not evaluated for it.",
    LINKS, setup=ROUTES + FORWARD_ON,
    iptables=table("nat", "-A PREROUTING -p tcp --dport 8080 -j DNAT --to-destination 10.2.0.2:80",
                   "-A PREROUTING -p tcp"),
    iptables_legacy=table("nat", "-A PREROUTING -p tcp",
                          "-A PREROUTING -p tcp --dport 8081 -j DNAT --to-destination 10.2.0.2:81"),
    packets=(
        Send("in h0 tcp 198.51.100.7:40000 > 10.1.0.1:8080",
             K("forwarded", "h1", dst="10.2.0.2", dport=80)),
        Send("in h0 tcp 198.51.100.7:40001 > 10.1.0.1:8081",
             K("forwarded", "h1", dst="10.2.0.2", dport=81)),
    ),
))

add(Scenario(
    "q-nft-order-older-table",
    "A native nft table created before the iptables-nft filter table (lower table handle): at "
    "equal priority iptables-nft, registered later, runs first.",
    LINKS, setup=ROUTES + """
nft -f - <<'NFT'
table ip qold {
  chain c {
    type filter hook input priority filter; policy accept;
    meta mark 0x4 counter
    udp dport 53 meta mark set 0x3
  }
}
NFT
""", listeners=(UDP53,),
    iptables=filt("-A INPUT -m mark --mark 0x3", "-A INPUT -p udp -j MARK --set-mark 0x4"),
    packets=(
        Send("in h0 udp 10.1.0.2:5000 > 10.1.0.1:53",
             K("delivered", mark="0x3", rules=("filter/INPUT#2", "native:qold/c#1",
                                               "native:qold/c#2"))),
    ),
))
