"""Kernel test of live collection: build a rich namespace, collect it, check every element.

Namespace ``a`` gets route tables (incl. > 255), special and multipath routes, IPv6 routes,
policy rules of every selector kind, neighbours, a server process with TCP/UDP sockets, conntrack
entries (with DNAT), iptables-nft, iptables-legacy and native nft rules, an ipset and tc qdiscs
with u32 filters. ``b`` is the client. The namespace's state must be unchanged by collection.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import ip_address, ip_network

import pytest
from kernelutil import Netns, namespaces, require_kernel, run, veth

from journey.errors import CollectError
from journey.model.family import Family
from journey.model.ruleset import Backend
from journey.model.snapshot import HostSnapshot, PartState, RouteType, RuleAction
from journey.snapshot.collect import collect

pytestmark = pytest.mark.kernel

TOOLS = ("iptables-nft-save", "iptables-legacy", "ip6tables-legacy", "nft", "ipset", "tc",
         "iptables-restore")

SERVER = r"""
import ctypes, socket, sys, time
ctypes.CDLL(None).prctl(15, b"coserver", 0, 0, 0)            # PR_SET_NAME
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"va0")
t.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, 0x42)
t.bind(("10.99.0.1", 2222)); t.listen()
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", 8080)); s.listen()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", 5353))
v = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
v.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1); v.bind(("::1", 5354))
print("ready", flush=True)
conns = [t.accept()[0], s.accept()[0], s.accept()[0]]
print("accepted", flush=True)
time.sleep(300)
"""

CLIENT = r"""
import socket, struct, time
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b)); s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
c1 = socket.create_connection(("10.99.0.1", 2222), timeout=5)
c2 = socket.create_connection(("10.99.0.1", 8443), timeout=5)        # DNAT -> 8080
c3 = socket.create_connection(("fd99::1", 8080), timeout=5)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.sendto(b"hi", ("10.99.0.1", 5353))
icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
hdr = struct.pack("!BBHHH", 8, 0, 0, 0x4242, 1) + b"journey"
icmp.sendto(struct.pack("!BBHHH", 8, 0, csum(hdr + b"\0"), 0x4242, 1) + b"journey", ("10.99.0.1", 0))
icmp.settimeout(5); icmp.recv(200)
print("connected", flush=True)
time.sleep(300)
"""

IPTABLES_V4 = """*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:COCHAIN - [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -s 10.99.0.0/24 -p tcp -m tcp --dport 2222 -j ACCEPT
-A INPUT -m set --match-set coset src -j COCHAIN
-A COCHAIN -p icmp -m icmp --icmp-type 8 -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -p tcp -m tcp --dport 8443 -j DNAT --to-destination 10.99.0.1:8080
COMMIT
"""
IPTABLES_V6 = """*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp -m tcp --dport 8080 -m conntrack --ctstate NEW -j ACCEPT
COMMIT
"""
NFT = """table inet cofilter {
    set allowed { type ipv4_addr; flags interval; elements = { 10.99.0.0/24 } }
    chain input {
        type filter hook input priority 10; policy accept;
        ct state established,related counter accept
        ip saddr @allowed tcp dport 8080 counter accept comment "co app"
    }
}
"""

SETUP_A = """
ip link add br0 type bridge
ip link set va1 master br0
ip link set br0 up
ip link add link va0 name mv0 type macvlan
ip link add v.dot type veth peer name vdotp
ip addr add 10.99.0.1/24 dev va0
ip addr add fd99::1/64 dev va0 nodad
ip addr add 10.98.0.1/24 dev br0
ip route add default via 10.99.0.2 table 100 metric 50
ip route add 10.50.0.0/16 via 10.99.0.2 table 1000 mtu 1400 src 10.99.0.1
ip route add prohibit 10.68.0.0/16 table 200
ip route add blackhole 10.66.0.0/16
ip route add unreachable 10.67.0.0/16
ip route add 10.70.0.0/16 nexthop via 10.99.0.2 weight 1 nexthop via 10.99.0.3 weight 2
ip -6 route add 2001:db8:100::/48 via fd99::2 table 100
ip -6 route add unreachable 2001:db8:67::/48
ip rule add pref 5 goto 32766
ip rule add pref 900 to 10.50.0.0/16 iif br0 table main
ip rule add pref 1100 fwmark 0x10/0xff table 200
ip rule add pref 1200 not ipproto tcp dport 22 table 100
ip rule add pref 1300 uidrange 1000-2000 table 1000
ip rule add pref 1400 table main suppress_prefixlength 0
ip rule add pref 1500 oif va0 sport 1000-2000 tos 0x10 prohibit
ip -6 rule add pref 1000 from fd99::/64 table 100
ip neigh add 10.99.0.2 lladdr {mac_b} dev va0 nud permanent
ip neigh add fd99::2 lladdr {mac_b} dev va0 nud permanent
ip neigh add 10.99.0.3 lladdr 02:00:00:00:00:03 dev va0 nud permanent
echo 1 > /proc/sys/net/ipv4/conf/va0/accept_local
ipset create coset hash:ip
ipset add coset 10.99.0.5
iptables-legacy -t raw -A PREROUTING -p udp --dport 5355 -j NOTRACK
iptables-legacy -A INPUT -p tcp --dport 2223 -j ACCEPT
ip6tables-legacy -A INPUT -p tcp --dport 8081 -j ACCEPT
tc qdisc add dev va0 clsact
tc filter add dev va0 ingress protocol ip prio 1 u32 match ip dst 10.99.0.1/32
tc qdisc add dev va1 ingress
tc qdisc add dev br0 root handle 1: htb default 10
tc class add dev br0 parent 1: classid 1:10 htb rate 100mbit
tc filter add dev br0 parent 1: protocol ip prio 1 u32 match ip dst 10.98.0.1/32 flowid 1:10
"""


@dataclass
class Lab:
    a: Netns
    b: Netns
    server: subprocess.Popen[str]
    client: subprocess.Popen[str]


def _mac(ns: Netns, ifname: str) -> str:
    return ns.exec(["cat", f"/sys/class/net/{ifname}/address"]).stdout.strip()


def _wait_line(p: subprocess.Popen[str], want: str) -> None:
    assert p.stdout is not None
    line = p.stdout.readline()
    if line.strip() != want:
        p.kill()
        raise RuntimeError(f"expected {want!r} from helper process, got {line!r}")


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    require_kernel(*TOOLS)
    procs: list[subprocess.Popen[str]] = []
    with namespaces("co", 2) as (a, b):
        try:
            veth(a, "va0", b, "vb0")
            veth(a, "va1", b, "vb1")
            b.ip("addr add 10.99.0.2/24 dev vb0")
            b.ip("addr add fd99::2/64 dev vb0 nodad")
            b.ip(f"neigh add 10.99.0.1 lladdr {_mac(a, 'va0')} dev vb0 nud permanent")
            b.ip(f"neigh add fd99::1 lladdr {_mac(a, 'va0')} dev vb0 nud permanent")
            a.sh(SETUP_A.replace("{mac_b}", _mac(b, "vb0")))
            a.restore("iptables-restore", IPTABLES_V4)
            a.restore("ip6tables-restore", IPTABLES_V6)
            a.restore("nft -f -", NFT)
            server = a.popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE)
            procs.append(server)
            _wait_line(server, "ready")
            client = b.popen([sys.executable, "-c", CLIENT], stdout=subprocess.PIPE)
            procs.append(client)
            _wait_line(client, "connected")
            _wait_line(server, "accepted")
            # last: a REACHABLE entry decays to STALE after base_reachable_time (15-45 s)
            a.ip("neigh add 10.99.0.4 lladdr 02:00:00:00:00:04 dev va0 nud reachable")
            yield Lab(a, b, server, client)
        finally:
            for p in procs:
                p.kill()
                p.wait()


# --- the namespace's state before and after ---------------------------------------------------

# counters measure traffic, bridge timers tick: neither is state
_COUNTERS = re.compile(r"\[\d+:\d+\]|packets \d+ bytes \d+|_timer +[\d.]+")


def _state(ns: Netns) -> dict[str, str]:
    cmds = {
        "iptables-save": ["iptables-save"],
        "ip6tables-save": ["ip6tables-save"],
        "iptables-legacy-save": ["iptables-legacy-save"],
        "ip6tables-legacy-save": ["ip6tables-legacy-save"],
        "nft": ["nft", "list", "ruleset"],
        "routes4": ["ip", "route", "show", "table", "all"],
        "routes6": ["ip", "-6", "route", "show", "table", "all"],
        "rules4": ["ip", "rule"],
        "rules6": ["ip", "-6", "rule"],
        "links": ["ip", "-d", "link"],
        "addrs": ["ip", "addr"],
        "neigh": ["ip", "neigh", "show", "nud", "permanent"],
        "ipset": ["ipset", "save"],
        "qdiscs": ["tc", "qdisc", "show"],
    }
    out = {}
    for key, argv in cmds.items():
        text = ns.exec(argv).stdout
        # dump headers carry the time
        text = "\n".join(_COUNTERS.sub("", line) for line in text.splitlines()
                         if not line.startswith("# "))
        out[key] = text
    return out


def _root_netns() -> set[str]:
    return {line.split()[0] for line in run(["ip", "netns", "list"]).stdout.splitlines()
            if line.strip()}


@pytest.fixture(scope="module")
def snap(lab: Lab) -> Iterator[HostSnapshot]:
    before = _state(lab.a)
    root_before = _root_netns()
    messages: list[str] = []
    s = collect(lab.a.name, progress=messages.append)
    assert _state(lab.a) == before, "collection changed the namespace"
    created = {n for n in _root_netns() - root_before if n.startswith("jtco")}
    assert not created, f"collection created namespaces {created}"
    assert messages and messages[-1] == "done"
    yield s


# --- assertions -------------------------------------------------------------------------------


def test_provenance_and_parts(snap: HostSnapshot, lab: Lab) -> None:
    p = snap.provenance
    assert p.origin == "live" and p.netns == lab.a.name and p.uid == 0
    assert p.kernel == os.uname().release and p.hostname
    assert p.time.endswith("+00:00")
    names = [x.name for x in p.parts]
    assert names == ["interfaces", "addresses", "routes", "rules", "neighbours", "sockets",
                     "conntrack", "sysctls", "iptables-v4-nft", "iptables-v6-nft",
                     "iptables-v4-legacy", "iptables-v6-legacy", "nftables", "ipsets", "tc"]
    bad = [x for x in p.parts if x.state is not PartState.COLLECTED]
    assert not bad, bad


def test_interfaces_and_addresses(snap: HostSnapshot) -> None:
    va0 = snap.interface("va0")
    assert va0 is not None and va0.kind == "veth" and "UP" in va0.flags
    assert va0.link is None  # its peer lives in another namespace
    assert va0.mac and va0.mtu == 1500 and va0.operstate == "UP"
    assert snap.interface("lo") is not None and snap.interface("lo").is_loopback  # type: ignore[union-attr]
    br0 = snap.interface("br0")
    assert br0 is not None and br0.kind == "bridge"
    va1 = snap.interface("va1")
    assert va1 is not None and va1.master == "br0"
    mv0 = snap.interface("mv0")
    assert mv0 is not None and mv0.kind == "macvlan" and mv0.link == "va0"
    assert mv0.xdp is None and mv0.vlan_id is None
    dot = snap.interface("v.dot")
    assert dot is not None and dot.link == "vdotp"
    addrs = {(a.ifname, str(a.address), a.prefixlen) for a in snap.addresses}
    assert {("va0", "10.99.0.1", 24), ("va0", "fd99::1", 64), ("br0", "10.98.0.1", 24),
            ("lo", "127.0.0.1", 8), ("lo", "::1", 128)} <= addrs
    fd = next(a for a in snap.addresses if str(a.address) == "fd99::1")
    assert "nodad" in fd.flags and fd.scope == "global"


def test_routes(snap: HostSnapshot) -> None:
    texts = {(r.family, r.table, r.text()) for r in snap.routes}
    v4, v6 = Family.IPV4, Family.IPV6
    assert (v4, 100, "default via 10.99.0.2 dev va0 table 100 metric 50") in texts
    assert (v4, 200, "prohibit 10.68.0.0/16 table 200") in texts
    assert (v4, 254, "blackhole 10.66.0.0/16") in texts
    assert (v4, 254, "unreachable 10.67.0.0/16") in texts
    assert (v6, 100, "2001:db8:100::/48 via fd99::2 dev va0 table 100 metric 1024") in texts
    big = [r for r in snap.routes if r.table == 1000]
    assert len(big) == 1
    r = big[0]
    assert r.dst == ip_network("10.50.0.0/16") and r.mtu == 1400
    assert r.prefsrc == ip_address("10.99.0.1") and r.gateway == ip_address("10.99.0.2")
    assert r.protocol == "boot" and r.scope == "universe"
    mp = next(r for r in snap.routes if r.dst == ip_network("10.70.0.0/16"))
    assert [(str(n.gateway), n.dev, n.weight) for n in mp.nexthops] == [
        ("10.99.0.2", "va0", 1), ("10.99.0.3", "va0", 2)]
    un6 = next(r for r in snap.routes if r.dst == ip_network("2001:db8:67::/48"))
    assert un6.type is RouteType.UNREACHABLE
    local = next(r for r in snap.routes if r.table == 255 and r.dst == ip_network("10.99.0.1/32"))
    assert local.type is RouteType.LOCAL and local.scope == "host" and local.protocol == "kernel"
    connected = next(r for r in snap.routes if r.table == 254
                     and r.dst == ip_network("10.99.0.0/24"))
    assert connected.scope == "link" and connected.dev == "va0"
    assert any(r.family is v6 and r.table == 255 and r.type is RouteType.MULTICAST
               for r in snap.routes)


def test_rules(snap: HostSnapshot) -> None:
    v4 = {r.priority: r for r in snap.rules if r.family is Family.IPV4}
    v6 = {r.priority: r for r in snap.rules if r.family is Family.IPV6}
    assert v4[0].table == 255 and v4[0].protocol == "kernel"
    assert v4[5].action is RuleAction.GOTO and v4[5].goto == 32766
    assert v4[900].iif == "br0" and v4[900].dst == ip_network("10.50.0.0/16")
    assert v4[900].table == 254
    assert (v4[1100].fwmark, v4[1100].fwmask, v4[1100].table) == (0x10, 0xFF, 200)
    r = v4[1200]
    assert r.invert and r.ipproto == 6 and r.dport is not None and (r.dport.start, r.dport.end) == (22, 22)
    assert r.table == 100
    r = v4[1300]
    assert r.uidrange is not None and (r.uidrange.start, r.uidrange.end) == (1000, 2000)
    assert r.table == 1000  # > 255: from FRA_TABLE
    assert v4[1400].suppress_prefixlength == 0 and v4[32766].suppress_prefixlength is None
    r = v4[1500]
    assert r.action is RuleAction.PROHIBIT and r.oif == "va0" and r.tos == 0x10
    assert r.sport is not None and (r.sport.start, r.sport.end) == (1000, 2000)
    assert r.table is None
    assert v4[32767].table == 253
    assert v6[1000].src == ip_network("fd99::/64") and v6[1000].table == 100
    assert v6[0].table == 255 and 32766 in v6
    assert v4[1200].text() == "1200: not from all ipproto 6 dport 22 lookup 100"


def test_neighbours(snap: HostSnapshot) -> None:
    n = {(str(x.address), x.ifname): x for x in snap.neighbours}
    assert n[("10.99.0.3", "va0")].state == ("PERMANENT",)
    assert n[("10.99.0.3", "va0")].lladdr == "02:00:00:00:00:03"
    assert n[("fd99::2", "va0")].state == ("PERMANENT",)
    assert n[("10.99.0.4", "va0")].state == ("REACHABLE",)


def test_sockets(snap: HostSnapshot, lab: Lab) -> None:
    def find(proto: str, state: str, port: int, remote: str | None = None) -> list:  # type: ignore[type-arg]
        return [s for s in snap.sockets if s.proto == proto and s.state == state
                and s.local_port == port and (remote is None or s.remote == ip_address(remote))]

    owner = (lab.server.pid, "coserver")
    [lis] = find("tcp", "LISTEN", 2222)
    assert str(lis.local) == "10.99.0.1" and lis.bound_dev == "va0" and lis.mark == 0x42
    assert lis.remote is None and lis.uid == 0 and lis.inode
    assert [(p.pid, p.name) for p in lis.processes] == [owner]
    [lis6] = find("tcp", "LISTEN", 8080)
    assert lis6.family is Family.IPV6 and str(lis6.local) == "::" and lis6.v6only is False
    assert [(p.pid, p.name) for p in lis6.processes] == [owner]
    [udp] = find("udp", "UNCONN", 5353)
    assert str(udp.local) == "0.0.0.0" and [(p.pid, p.name) for p in udp.processes] == [owner]
    [udp6] = find("udp", "UNCONN", 5354)
    assert udp6.v6only is True and str(udp6.local) == "::1"
    [est] = find("tcp", "ESTAB", 2222, "10.99.0.2")
    assert est.remote_port and [(p.pid, p.name) for p in est.processes] == [owner]
    [est_nat] = find("tcp", "ESTAB", 8080, "::ffff:10.99.0.2")  # DNATed 8443 -> 8080
    assert est_nat.processes
    [est6] = find("tcp", "ESTAB", 8080, "fd99::2")
    assert est6.family is Family.IPV6
    assert all(s.state in {"LISTEN", "ESTAB", "UNCONN", "TIME-WAIT", "CLOSE-WAIT", "FIN-WAIT-2",
                           "SYN-SENT", "SYN-RECV", "FIN-WAIT-1", "LAST-ACK", "CLOSING"}
               for s in snap.sockets)


def test_conntrack(snap: HostSnapshot) -> None:
    ct = snap.conntrack
    nat = [e for e in ct if e.proto == 6 and e.orig.dport == 8443]
    assert len(nat) == 1
    e = nat[0]
    assert str(e.orig.src) == "10.99.0.2" and str(e.orig.dst) == "10.99.0.1"
    assert e.reply.sport == 8080 and str(e.reply.src) == "10.99.0.1"
    assert "DST_NAT" in e.status and "ASSURED" in e.status and e.tcp_state == "ESTABLISHED"
    assert e.timeout and e.timeout > 0 and e.mark == 0 and e.zone == 0
    icmp = [e for e in ct if e.proto == 1]
    assert icmp and icmp[0].orig.icmp_type == 8 and icmp[0].orig.icmp_id == 0x4242
    assert icmp[0].reply.icmp_type == 0 and icmp[0].orig.sport is None
    assert any(e.proto == 17 and e.orig.dport == 5353 and "SEEN_REPLY" not in e.status
               for e in ct)
    assert any(e.family is Family.IPV6 and e.proto == 6 and e.orig.dport == 8080 for e in ct)


def test_sysctls(snap: HostSnapshot) -> None:
    assert snap.sysctl("net.ipv4.ip_forward") == "0"
    assert snap.sysctl("net.ipv4.conf.va0.accept_local") == "1"
    assert snap.sysctl("net.ipv4.conf.br0.accept_local") == "0"
    assert snap.sysctl("net.ipv4.conf.v.dot.rp_filter") is not None  # dotted name kept as is
    assert "net.ipv4.route.flush" not in snap.sysctls  # write-only
    assert len(snap.sysctls) > 500


def test_iptables(snap: HostSnapshot) -> None:
    dumps = {(d.family, d.backend): d for d in snap.iptables}
    v4 = dumps[(Family.IPV4, Backend.NFT)]
    assert v4.table("filter") is not None and v4.table("nat") is not None
    cochain = v4.table("filter").chain("COCHAIN")  # type: ignore[union-attr]
    assert cochain is not None and len(cochain.rules) == 1
    assert any("--to-destination 10.99.0.1:8080" in r.text
               for c in v4.table("nat").chains for r in c.rules)  # type: ignore[union-attr]
    assert dumps[(Family.IPV6, Backend.NFT)].rule_count == 1
    legacy4 = dumps[(Family.IPV4, Backend.LEGACY)]
    assert legacy4.table("raw") is not None and legacy4.rule_count == 2
    assert dumps[(Family.IPV6, Backend.LEGACY)].rule_count == 1
    assert snap.raw_dump("iptables-save") is not None
    assert "NOTRACK" in snap.raw_dump("iptables-legacy-save").text  # type: ignore[union-attr]
    assert "8081" in snap.raw_dump("ip6tables-legacy-save").text  # type: ignore[union-attr]


def test_nft_ipset_tc(snap: HostSnapshot) -> None:
    nft = snap.raw_dump("nft -j list ruleset")
    assert nft is not None and '"cofilter"' in nft.text and '"co app"' in nft.text
    s = snap.ipset("coset")
    assert s is not None and s.type == "hash:ip" and s.members == ("10.99.0.5",)
    assert "create coset" in snap.raw_dump("ipset save").text  # type: ignore[union-attr]
    q = snap.raw_dump("tc -j qdisc show")
    assert q is not None and '"clsact"' in q.text and '"ingress"' in q.text and '"htb"' in q.text
    f = snap.raw_dump("tc -j filter show")
    assert f is not None
    import json
    filters = json.loads(f.text)
    assert set(filters) == {"dev va0 ingress", "dev va0 egress", "dev va1 ingress", "dev br0"}
    assert any(x.get("kind") == "u32" for x in filters["dev va0 ingress"])
    assert filters["dev va0 egress"] == []
    assert any(x.get("options", {}).get("flowid") == "1:10" for x in filters["dev br0"])


def test_missing_namespace_is_not_created() -> None:
    require_kernel()
    name = f"jtco-missing-{secrets.token_hex(3)}"
    with pytest.raises(CollectError, match=f"no such network namespace: {name}"):
        collect(name)
    assert not os.path.exists(f"/run/netns/{name}")
    assert name not in _root_netns()
    with pytest.raises(CollectError, match="invalid network namespace name"):
        collect("../etc")


def test_collect_is_fast(lab: Lab) -> None:
    t = time.perf_counter()
    collect(lab.a.name)
    assert time.perf_counter() - t < 2.0
