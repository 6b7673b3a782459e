"""Differential scenarios: socket lookup, locally generated packets, the kernel's own replies.

Standard topology of ``tests.kernel.scenarios`` (h0 10.1.0.1/24 fd01::1/64 towards n0, default
route; h1 10.2.0.1/24 fd02::1/64 towards n1, 192.0.2.0/24 and 2001:db8:2::/48 behind it).
Listeners use the harness's socket options (SO_REUSEPORT, IPV6_V6ONLY, SO_BINDTODEVICE,
connect() before the snapshot). A TCP listener's SYN only shows the SYN-ACK; the ACK that
follows completes the handshake, and the socket that accept()s tells which listener won.
"""

from __future__ import annotations

from tests.kernel.harness import K, Listener, Scenario, Send
from tests.kernel.scenarios import LINKS, ROUTES, filt, table

SCENARIOS: list[Scenario] = []


def add(sc: Scenario) -> Scenario:
    SCENARIOS.append(sc)
    return sc


L = Listener

# ---------------------------------------------------------------------------------------------
# socket lookup
# ---------------------------------------------------------------------------------------------

add(Scenario(
    "t-sock-tcp-specific-vs-wildcard",
    "A listener bound to 10.1.0.1:80 and a wildcard one on the same port (SO_REUSEPORT, so "
    "both can listen): the exact address wins for 10.1.0.1, the wildcard takes 10.2.0.1.",
    LINKS, setup=ROUTES,
    listeners=(L("tcp", "10.1.0.1", 80, reuseport=True), L("tcp", "0.0.0.0", 80, reuseport=True)),
    packets=(
        Send("in h0 tcp 10.1.0.2:40000 > 10.1.0.1:80 flags S", K("delivered", replies=("syn-ack",))),
        Send("in h0 tcp 10.1.0.2:40000 > 10.1.0.1:80 flags A", K("delivered", replies=())),
        Send("in h0 tcp 10.1.0.2:40001 > 10.2.0.1:80 flags S", K("delivered", replies=("syn-ack",))),
        Send("in h0 tcp 10.1.0.2:40001 > 10.2.0.1:80 flags A", K("delivered", replies=())),
    ),
))

add(Scenario(
    "t-sock-tcp-dualstack-vs-v4",
    "A dual-stack [::]:81 listener and a 0.0.0.0:81 one (SO_REUSEPORT): IPv4 goes to the IPv4 "
    "socket (higher score), IPv6 to the [::] one.",
    LINKS, setup=ROUTES,
    listeners=(L("tcp", "::", 81, reuseport=True), L("tcp", "0.0.0.0", 81, reuseport=True)),
    packets=(
        Send("in h0 tcp 10.1.0.2:40000 > 10.1.0.1:81 flags S", K("delivered", replies=("syn-ack",))),
        Send("in h0 tcp 10.1.0.2:40000 > 10.1.0.1:81 flags A", K("delivered")),
        Send("in h0 tcp [fd01::2]:40001 > [fd01::1]:81 flags S",
             K("delivered", replies=("syn-ack",))),
        Send("in h0 tcp [fd01::2]:40001 > [fd01::1]:81 flags A", K("delivered")),
    ),
))

add(Scenario(
    "t-sock-tcp-v6only",
    "A [::]:82 listener with IPV6_V6ONLY refuses IPv4 (RST) and takes IPv6; beside it a "
    "v6only [::]:83 and a 0.0.0.0:83 share the port without SO_REUSEPORT.",
    LINKS, setup=ROUTES,
    listeners=(L("tcp", "::", 82, v6only=True), L("tcp", "::", 83, v6only=True),
               L("tcp", "0.0.0.0", 83)),
    packets=(
        Send("in h0 tcp 10.1.0.2:40000 > 10.1.0.1:82 flags S",
             K("rejected", replies=("tcp-rst",), reason="no-socket")),
        Send("in h0 tcp [fd01::2]:40001 > [fd01::1]:82 flags S",
             K("delivered", replies=("syn-ack",))),
        Send("in h0 tcp 10.1.0.2:40002 > 10.1.0.1:83 flags S", K("delivered", replies=("syn-ack",))),
        Send("in h0 tcp 10.1.0.2:40002 > 10.1.0.1:83 flags A", K("delivered")),
        Send("in h0 tcp [fd01::2]:40003 > [fd01::1]:83 flags S",
             K("delivered", replies=("syn-ack",))),
        Send("in h0 tcp [fd01::2]:40003 > [fd01::1]:83 flags A", K("delivered")),
    ),
))

add(Scenario(
    "t-sock-bindtodevice",
    "Sockets bound to h1 (SO_BINDTODEVICE): a SYN arriving on h0 gets a RST even for h1's "
    "address; on h1 the listener answers. The same for UDP (port unreachable on h0).",
    LINKS, setup=ROUTES,
    listeners=(L("tcp", "0.0.0.0", 84, device="h1"), L("udp", "0.0.0.0", 86, device="h1")),
    packets=(
        Send("in h0 tcp 10.1.0.2:40000 > 10.1.0.1:84 flags S",
             K("rejected", replies=("tcp-rst",), reason="no-socket")),
        Send("in h0 tcp 10.1.0.2:40001 > 10.2.0.1:84 flags S",
             K("rejected", replies=("tcp-rst",), reason="no-socket")),
        Send("in h1 tcp 10.2.0.2:40002 > 10.2.0.1:84 flags S", K("delivered", replies=("syn-ack",))),
        Send("in h1 tcp 10.2.0.2:40002 > 10.2.0.1:84 flags A", K("delivered")),
        Send("in h0 udp 10.1.0.2:5000 > 10.2.0.1:86",
             K("rejected", replies=("icmp 3/3",), reason="no-socket")),
        Send("in h1 udp 10.2.0.2:5001 > 10.2.0.1:86", K("delivered", replies=())),
    ),
))

add(Scenario(
    "t-sock-udp-bound-connected",
    "UDP: a socket bound to 10.1.0.1 beats a wildcard one; a socket connected to "
    "10.1.0.2:6000 takes only that peer's datagrams (others fall to the wildcard socket, or to "
    "no socket: port unreachable); a SO_REUSEPORT pair.",
    LINKS, setup=ROUTES,
    listeners=(L("udp", "10.1.0.1", 53), L("udp", "0.0.0.0", 53),
               L("udp", "10.1.0.1", 55, connect=("10.1.0.2", 6000)), L("udp", "0.0.0.0", 55),
               L("udp", "10.2.0.1", 56, connect=("10.1.0.2", 6000)),
               L("udp", "0.0.0.0", 57, reuseport=True), L("udp", "0.0.0.0", 57, reuseport=True)),
    packets=(
        Send("in h0 udp 10.1.0.2:5000 > 10.1.0.1:53", K("delivered")),
        Send("in h0 udp 10.1.0.2:5001 > 10.2.0.1:53", K("delivered")),
        Send("in h0 udp 10.1.0.2:6000 > 10.1.0.1:55", K("delivered")),
        Send("in h0 udp 10.1.0.2:6001 > 10.1.0.1:55", K("delivered")),
        Send("in h0 udp 10.1.0.2:6001 > 10.2.0.1:56",
             K("rejected", replies=("icmp 3/3",), reason="no-socket")),
        Send("in h0 udp 10.1.0.2:6000 > 10.2.0.1:56", K("delivered")),
        Send("in h0 udp 10.1.0.2:6002 > 10.1.0.1:57", K("delivered"),
             note="an SO_REUSEPORT group: the kernel picks a member by hash (engine: uncertain)"),
    ),
))

add(Scenario(
    "t-sock-tcp-established",
    "A TCP connection 10.2.0.1:5555 -> 10.1.0.1:87 (over lo, before the snapshot): a SYN from "
    "the wire to port 5555, where only that connection lives, gets a RST; with accept_local a "
    "SYN carrying the connection's own 4-tuple reaches the established socket, which answers "
    "a challenge ACK (through lo) and discards it.",
    LINKS, setup=ROUTES + "sysctl -qw net.ipv4.conf.h0.accept_local=1\n",
    listeners=(L("tcp", "10.1.0.1", 87), L("tcp", "10.2.0.1", 5555, connect=("10.1.0.1", 87))),
    packets=(
        Send("in h0 tcp 10.1.0.2:40000 > 10.2.0.1:5555 flags S",
             K("rejected", replies=("tcp-rst",), reason="no-socket")),
        Send("in h0 tcp 10.2.0.1:5555 > 10.1.0.1:87 flags S", K("dropped", replies=())),
    ),
))

# ---------------------------------------------------------------------------------------------
# local output
# ---------------------------------------------------------------------------------------------

add(Scenario(
    "t-out-drop-reject",
    "OUTPUT DROP (sendmsg EPERM) for UDP and a TCP SYN; OUTPUT REJECT --reject-with tcp-reset "
    "answers the local connect with a RST through lo; the same in ip6tables (DROP, REJECT "
    "with ICMPv6 port unreachable).",
    LINKS, setup=ROUTES,
    iptables=filt("-A OUTPUT -p udp --dport 1240 -j DROP",
                  "-A OUTPUT -p tcp --dport 1241 -j DROP",
                  "-A OUTPUT -p tcp --dport 1242 -j REJECT --reject-with tcp-reset"),
    ip6tables=filt("-A OUTPUT -p udp --dport 1240 -j DROP",
                   "-A OUTPUT -p udp --dport 1243 -j REJECT"),
    packets=(
        Send("local udp > 198.51.100.7:1240",
             K("dropped", rules=("filter/OUTPUT#1",), reason="netfilter")),
        Send("local tcp > 198.51.100.7:1241",
             K("dropped", rules=("filter/OUTPUT#2",), reason="netfilter")),
        Send("local tcp > 198.51.100.7:1242",
             K("rejected", replies=("tcp-rst",), rules=("filter/OUTPUT#3",))),
        Send("local udp > [2001:db8:1::7]:1240",
             K("dropped", rules=("filter/OUTPUT#1",), reason="netfilter")),
        Send("local udp [fd01::1]:40005 > [2001:db8:1::7]:1243",
             K("rejected", replies=("icmpv6 1/4",), rules=("filter/OUTPUT#2",))),
    ),
))

add(Scenario(
    "t-out-masquerade",
    "nat POSTROUTING MASQUERADE of locally generated packets: a UDP datagram bound to h1's "
    "address leaving h0 gets h0's address (port kept); IPv6 the same; a TCP SYN too.",
    LINKS, setup=ROUTES,
    iptables=table("nat", "-A POSTROUTING -o h0 -j MASQUERADE"),
    ip6tables=table("nat", "-A POSTROUTING -o h0 -j MASQUERADE"),
    packets=(
        Send("local udp 10.2.0.1:40000 > 198.51.100.7:53",
             K("sent", "h0", rules=("nat/POSTROUTING#1",), src="10.1.0.1", sport=40000)),
        Send("local udp > 198.51.100.7:54",
             K("sent", "h0", rules=("nat/POSTROUTING#1",), src="10.1.0.1")),
        Send("local tcp 10.2.0.1:40001 > 198.51.100.7:80",
             K("sent", "h0", rules=("nat/POSTROUTING#1",), src="10.1.0.1", sport=40001)),
        Send("local udp [fd02::1]:40002 > [2001:db8:1::7]:53",
             K("sent", "h0", rules=("nat/POSTROUTING#1",), src="fd01::1", sport=40002)),
        Send("local udp 10.2.0.1:40003 > 192.0.2.10:53",
             K("sent", "h1", rules=(), src="10.2.0.1")),
    ),
))

add(Scenario(
    "t-out-lo-prerouting",
    "A local packet to an address of another interface loops through lo: it passes OUTPUT, "
    "POSTROUTING, then PREROUTING with iif lo (mangle sees it; nat PREROUTING does not, NAT "
    "was decided in OUTPUT) and INPUT.",
    LINKS, setup=ROUTES,
    listeners=(L("udp", "0.0.0.0", 53), L("udp", "0.0.0.0", 54)),
    iptables=table("mangle", "-A PREROUTING -i lo -p udp -j MARK --set-mark 0x7")
    + table("nat", "-A PREROUTING -i lo -p udp --dport 53 -j DNAT --to-destination 10.1.0.1:54")
    + filt("-A INPUT -i lo -p udp -m mark --mark 0x7"),
    packets=(
        Send("local udp 10.1.0.1:40000 > 10.2.0.1:53",
             K("delivered", rules=("mangle/PREROUTING#1", "filter/INPUT#1"), dport=53,
               mark="0x7")),
        Send("local udp > 10.2.0.1:54",
             K("delivered", rules=("mangle/PREROUTING#1", "filter/INPUT#1"), dport=54)),
    ),
))

add(Scenario(
    "t-out-v6-mark-reroute-uid",
    "IPv6 local output: a mark set in mangle OUTPUT re-routes through h1 (source from the first "
    "lookup kept); a uidrange rule sends uid 1000's packets through h1 (source of h1); "
    "--uid-owner in ip6tables OUTPUT.",
    LINKS, setup=ROUTES + """
ip -6 rule add fwmark 0x10 lookup 100 priority 100
ip -6 rule add uidrange 1000-1000 lookup 100 priority 110
ip rule add uidrange 1000-1000 lookup 100 priority 110
ip -6 route add default via fd02::2 dev h1 table 100
ip route add default via 10.2.0.2 dev h1 table 100
""",
    ip6tables=table("mangle", "-A OUTPUT -p udp --dport 53 -j MARK --set-mark 0x10")
    + filt("-A OUTPUT -m owner --uid-owner 1000"),
    iptables=filt("-A OUTPUT -m owner --uid-owner 1000"),
    packets=(
        Send("local uid 0 udp > [2001:db8:1::7]:53",
             K("sent", "h1", rules=("mangle/OUTPUT#1",), src="fd01::1", mark="0x10")),
        Send("local uid 0 udp > [2001:db8:1::7]:54", K("sent", "h0", rules=(), src="fd01::1")),
        Send("local uid 1000 udp > [2001:db8:1::7]:54",
             K("sent", "h1", rules=("filter/OUTPUT#1",), src="fd02::1")),
        Send("local uid 1000 tcp > 198.51.100.7:80",
             K("sent", "h1", rules=("filter/OUTPUT#1",), src="10.2.0.1")),
    ),
))

# ---------------------------------------------------------------------------------------------
# the kernel's own replies
# ---------------------------------------------------------------------------------------------

add(Scenario(
    "t-reply-echo-ignore",
    "icmp_echo_ignore_all (v4 and v6): echo requests reach INPUT and are ignored; "
    "icmp_echo_ignore_broadcasts (default 1): a broadcast echo request is ignored.",
    LINKS, setup=ROUTES + """
sysctl -qw net.ipv4.icmp_echo_ignore_all=1
sysctl -qw net.ipv6.icmp.echo_ignore_all=1
""",
    packets=(
        Send("in h0 icmp 10.1.0.2 > 10.1.0.1 type echo-request id 7", K("dropped", replies=())),
        Send("in h0 icmpv6 fd01::2 > fd01::1 type echo-request id 7", K("dropped", replies=())),
        Send("in h0 icmp 10.1.0.2 > 10.1.0.255 type echo-request id 8 mac ff:ff:ff:ff:ff:ff",
             K("dropped", replies=())),
    ),
))

add(Scenario(
    "t-reply-synack-output-drop",
    "An OUTPUT rule drops the SYN-ACKs of port 88: the SYN reaches the listener but nothing "
    "answers. The RST for a closed port passes OUTPUT too (port 89: dropped there).",
    LINKS, setup=ROUTES, listeners=(L("tcp", "0.0.0.0", 88),),
    iptables=filt("-A OUTPUT -p tcp --sport 88 -j DROP", "-A OUTPUT -p tcp --sport 89 -j DROP"),
    packets=(
        Send("in h0 tcp 10.1.0.2:40000 > 10.1.0.1:88 flags S", K("delivered", replies=())),
        Send("in h0 tcp 10.1.0.2:40001 > 10.1.0.1:89 flags S", K("dropped", replies=())),
        Send("in h0 udp 10.1.0.2:5000 > 10.1.0.1:89", K("rejected", replies=("icmp 3/3",))),
    ),
))
