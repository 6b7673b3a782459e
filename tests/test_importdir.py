"""Importing folders of raw command outputs (journey's names, sos reports) and the text parsers.

The fixtures under tests/data/importdir/host1 and tests/data/sosreport/sos-host1 are real outputs
of the tools, taken in one run of tests/data/importdir/make_fixtures.sh inside namespaces.
"""

from __future__ import annotations

import ipaddress
import shutil
from pathlib import Path

import pytest

import journey.cli
from journey.errors import RuleParseError, SnapshotError
from journey.model.family import Family
from journey.model.ruleset import Backend
from journey.model.snapshot import HostSnapshot, PartState, RouteType, RuleAction
from journey.snapshot import textparsers as tp
from journey.snapshot.importdir import import_dir

DATA = Path(__file__).parent / "data"
HOST1 = DATA / "importdir" / "host1"
SOS1 = DATA / "sosreport" / "sos-host1"
ip = ipaddress.ip_address
net = ipaddress.ip_network


@pytest.fixture(scope="module")
def host1() -> HostSnapshot:
    return import_dir(HOST1)


@pytest.fixture(scope="module")
def sos1() -> HostSnapshot:
    return import_dir(SOS1)


def _part(snap: HostSnapshot, name: str) -> tuple[PartState, str | None]:
    p = snap.provenance.part(name)
    assert p is not None, name
    return p.state, p.reason


def test_flat_folder_routes_rules_and_addresses(host1: HostSnapshot) -> None:
    t100 = [r for r in host1.routes if r.table == 100 and r.family is Family.IPV4]
    r = next(r for r in t100 if r.dst == net("10.50.0.0/16"))
    assert (r.gateway, r.dev, r.protocol, r.metric) == (ip("10.77.0.2"), "h0", "static", 50)
    assert any(r.dst == net("0.0.0.0/0") and r.dev == "h1" for r in t100)
    host = next(r for r in host1.routes if r.table == 1000)
    assert host.dst == net("10.90.1.5/32")
    assert next(r for r in host1.routes if r.dst == net("10.68.0.0/16")).type is RouteType.PROHIBIT
    mp = next(r for r in host1.routes if r.dst == net("10.70.0.0/16"))
    assert [(str(n.gateway), n.dev, n.weight) for n in mp.nexthops] == [
        ("10.77.0.2", "h0", 1), ("10.78.0.2", "h1", 2)]
    v6 = next(r for r in host1.routes if r.dst == net("2001:db8:100::/48"))
    assert (v6.family, v6.table, v6.metric) == (Family.IPV6, 100, 1024)
    unr6 = next(r for r in host1.routes if r.dst == net("2001:db8:bad::/48"))
    assert unr6.type is RouteType.UNREACHABLE and unr6.table == 254
    local = [r for r in host1.routes if r.table == 255 and r.family is Family.IPV4]
    assert any(r.type is RouteType.LOCAL and r.dst == net("10.77.0.9/32") for r in local)
    assert len({(r.family, r.table, r.dst, r.dev, r.type) for r in host1.routes}) == len(host1.routes)

    fw = next(r for r in host1.rules if r.fwmark is not None)
    assert (fw.priority, fw.fwmark, fw.fwmask, fw.table) == (1100, 0x10, 0xFF, 200)
    inv = next(r for r in host1.rules if r.priority == 1200)
    assert inv.invert and inv.dst == net("10.0.0.0/8") and inv.src is None
    ssh = next(r for r in host1.rules if r.priority == 1250)
    assert ssh.ipproto == 6 and ssh.dport is not None and (ssh.dport.start, ssh.dport.end) == (22, 22)
    iif = next(r for r in host1.rules if r.priority == 900)
    assert (iif.iif, iif.dst, iif.table) == ("h1", net("10.50.0.0/16"), 254)
    v6rule = next(r for r in host1.rules if r.family is Family.IPV6 and r.priority == 1000)
    assert v6rule.src == net("fd77::/64") and v6rule.table == 100
    assert next(r for r in host1.rules if r.priority == 0).table == 255

    h0 = host1.interface("h0")
    assert h0 is not None and h0.kind == "veth" and h0.mac == "02:00:00:00:a0:01" and h0.is_up
    assert host1.interface("h2b") is not None and host1.interface("h2b").master == "br0"  # type: ignore[union-attr]
    sec = next(a for a in host1.addresses if a.address == ip("10.77.0.9"))
    assert sec.flags == ("secondary",) and sec.label == "h0" and sec.prefixlen == 24
    assert any(a.address == ip("fd77::1") and "nodad" in a.flags for a in host1.addresses)


def test_flat_folder_neighbours_sockets_conntrack(host1: HostSnapshot) -> None:
    n = next(n for n in host1.neighbours if n.address == ip("10.77.0.3"))
    assert (n.ifname, n.lladdr, n.state) == ("h0", "02:00:00:00:00:03", ("PERMANENT",))
    assert next(n for n in host1.neighbours if n.address == ip("10.77.0.4")).state == ("STALE",)

    ssh = next(s for s in host1.sockets if s.local_port == 2222)
    assert (ssh.proto, ssh.state, ssh.local, ssh.family) == ("tcp", "LISTEN", ip("10.77.0.1"),
                                                              Family.IPV4)
    assert [p.name for p in ssh.processes] == ["python3"] and ssh.processes[0].pid > 0
    web = next(s for s in host1.sockets if s.local_port == 8080 and s.state == "LISTEN")
    assert web.local == ip("::") and web.v6only is False and web.remote is None
    est = next(s for s in host1.sockets if s.state == "ESTAB")
    assert est.remote == ip("::ffff:10.77.0.2") and est.remote_port == 40123
    udp6 = next(s for s in host1.sockets if s.local_port == 5354)
    assert (udp6.proto, udp6.local, udp6.v6only) == ("udp", ip("::1"), True)

    tcp = next(e for e in host1.conntrack if e.proto == 6)
    assert (tcp.orig.src, tcp.orig.dst, tcp.orig.sport, tcp.orig.dport) == (
        ip("10.77.0.2"), ip("10.77.0.1"), 40123, 8080)
    assert (tcp.reply.src, tcp.reply.sport, tcp.reply.dport) == (ip("10.77.0.1"), 8080, 40123)
    assert tcp.tcp_state == "ESTABLISHED" and "ASSURED" in tcp.status
    assert "DST_NAT" not in tcp.status and "SEEN_REPLY" in tcp.status
    icmp = next(e for e in host1.conntrack if e.proto == 1)
    assert (icmp.orig.icmp_type, icmp.orig.icmp_id, icmp.reply.icmp_type) == (8, 4660, 0)
    udp = next(e for e in host1.conntrack if e.proto == 17 and e.orig.dport == 9000)
    assert "UNREPLIED" in udp.status and "SEEN_REPLY" not in udp.status
    assert any(e.proto == 2 for e in host1.conntrack)  # "unknown 2" (IGMP) kept


def test_flat_folder_firewall_sysctls_and_parts(host1: HostSnapshot) -> None:
    assert host1.sysctl("net.ipv4.ip_forward") == "1"
    assert host1.sysctl("net.ipv4.conf.h1.rp_filter") == "2"
    assert host1.sysctl("net.ipv4.conf.h1.route_localnet") == "1"
    assert all(k.startswith("net.") for k in host1.sysctls)
    trusted = host1.ipset("trusted")
    assert trusted is not None and trusted.type == "hash:net" and trusted.family is Family.IPV4
    assert set(trusted.members) == {"10.78.0.0/24", "192.168.50.0/24"}
    kinds = {(d.family, d.backend) for d in host1.iptables}
    assert kinds == {(Family.IPV4, Backend.NFT), (Family.IPV6, Backend.NFT),
                     (Family.IPV4, Backend.LEGACY)}
    v4 = next(d for d in host1.iptables if d.family is Family.IPV4 and d.backend is Backend.NFT)
    filt = v4.table("filter")
    assert filt is not None and filt.chain("FORWARD").policy == "DROP"  # type: ignore[union-attr]
    assert v4.source == "iptables-save.txt"
    assert host1.raw_dump("nft -j list ruleset") is not None
    assert host1.raw_dump("tc -j qdisc show") is not None
    assert host1.raw_dump("iptables-save").text == v4.text  # type: ignore[union-attr]
    assert _part(host1, "iptables-v6-legacy") == (PartState.MISSING,
                                                  "file not found: ip6tables-legacy-save.txt")
    assert _part(host1, "routes") == (PartState.COLLECTED, None)
    assert host1.provenance.origin == "from-dir" and host1.provenance.hostname == "host1"
    assert host1.provenance.kernel.startswith("6.")


def test_sosreport_text_outputs_equal_the_json_ones(host1: HostSnapshot, sos1: HostSnapshot) -> None:
    # both layouts come from one run: `ip` text and `ip -j` must give the same values
    assert sos1.provenance.origin == "sosreport"
    assert sos1.routes == host1.routes
    assert sos1.rules == host1.rules
    assert sos1.interfaces == host1.interfaces
    assert sos1.addresses == host1.addresses
    assert sos1.sockets == host1.sockets  # ss -peaonmi (multi-line) vs ss -tuanpe
    assert sos1.conntrack == host1.conntrack
    assert sos1.sysctls == host1.sysctls
    # sos adds the NOARP entries (ip neigh show nud noarp)
    assert any("NOARP" in n.state for n in sos1.neighbours)
    assert {n.address for n in host1.neighbours} <= {n.address for n in sos1.neighbours}
    assert sos1.raw_dump("nft list ruleset") is not None


def test_sosreport_without_iptables_save_says_why(sos1: HostSnapshot) -> None:
    state, reason = _part(sos1, "iptables-v4-nft")
    assert state is PartState.MISSING and reason is not None
    assert reason.startswith("file not found: iptables-save")
    assert "sos_commands/firewall_tables/iptables_-vnxL" in reason
    assert sos1.iptables == ()
    assert sos1.raw_dump("iptables -vnxL") is not None


def test_sosreport_with_added_iptables_save(tmp_path: Path) -> None:
    sos = tmp_path / "sos"
    shutil.copytree(SOS1, sos)
    shutil.copy(HOST1 / "iptables-save.txt", sos / "iptables-save")
    snap = import_dir(sos)
    assert _part(snap, "iptables-v4-nft") == (PartState.COLLECTED, None)
    assert snap.iptables[0].source == "iptables-save"


def test_missing_files_are_recorded(tmp_path: Path) -> None:
    folder = tmp_path / "dumps"
    shutil.copytree(HOST1, folder)
    for name in ("ss.txt", "ip6_route.json", "conntrack.txt", "nft.json"):
        (folder / name).unlink()
    snap = import_dir(folder)
    assert _part(snap, "sockets") == (PartState.MISSING, "file not found: ss.txt")
    assert _part(snap, "conntrack") == (PartState.MISSING, "file not found: conntrack.txt")
    assert _part(snap, "nftables") == (PartState.MISSING, "file not found: nft.json")
    # ip_route.json (no -6) still lists both families
    assert _part(snap, "routes")[0] is PartState.COLLECTED
    assert any(r.family is Family.IPV6 for r in snap.routes)
    (folder / "ip_route.json").unlink()
    snap = import_dir(folder)
    assert _part(snap, "routes") == (PartState.MISSING,
                                     "file not found: ip_route.json and ip6_route.json")


def test_empty_folder_is_all_missing(tmp_path: Path) -> None:
    snap = import_dir(tmp_path)
    assert snap.routes == () and snap.iptables == ()
    assert all(p.state is PartState.MISSING for p in snap.provenance.parts)
    assert {p.name for p in snap.provenance.parts} >= {
        "interfaces", "addresses", "routes", "rules", "neighbours", "sockets", "conntrack",
        "sysctls", "iptables-v4-nft", "iptables-v6-nft", "nftables", "ipsets", "tc"}


def test_aliases_and_text_forms(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    shutil.copy(SOS1 / "sos_commands/networking/ip_route_show_table_all", folder / "IP-ROUTE.txt")
    shutil.copy(SOS1 / "sos_commands/networking/ip_-4_rule_list", folder / "ip-rule")
    shutil.copy(HOST1 / "iptables-save.txt", folder / "iptables_save.out")
    snap = import_dir(folder)
    assert len(snap.routes) == 48 and len(snap.rules) == 9
    assert _part(snap, "rules")[0] is PartState.PARTIAL
    assert snap.iptables[0].source == "iptables_save.out"


def test_malformed_iptables_dump(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "dumps"
    shutil.copytree(HOST1, folder)
    lines = (folder / "iptables-save.txt").read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("-A INPUT"))
    lines.insert(at, "-A NOPE -j ACCEPT")
    (folder / "iptables-save.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(RuleParseError) as e:
        import_dir(folder)
    assert (e.value.file, e.value.line) == ("iptables-save.txt", at + 1)
    monkeypatch.setattr(journey.cli, "COMMANDS", {k: v for k, v in journey.cli.COMMANDS.items()
                                                  if k in ("snapshot", "show")})
    out = tmp_path / "s.json"
    assert journey.cli.main(["snapshot", "-o", str(out), "--from-dir", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"journey snapshot: iptables-save.txt:{at + 1}: ")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(("name", "text", "where"), [
    ("ip_route.json", '[{"dst": "default"}, {"dst": "10.0.0.0/33"}]', "ip_route.json: [1].dst"),
    ("ip_route.json", '[{"dst": "default",\n "via": ]', "ip_route.json:2:"),
    ("ip_rule.json", '{"priority": 0}', "ip_rule.json: expected a JSON list"),
    ("ip_route.txt", "default via 10.0.0.1 dev eth0\n10.1.0.0/16 dev eth0 frobnicate 3\n",
     "ip_route.txt:2: unknown word 'frobnicate'"),
    ("ip_rule.txt", "0:\tfrom all lookup local\nwhat is this\n", "ip_rule.txt:2:"),
    ("ss.txt", "Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port\n"
               "tcp LISTEN 0 128 10.0.0.1:http 0.0.0.0:*\n", "ss.txt:2: port:"),
    ("conntrack.txt", "ipv4 2 tcp 6 100 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2\n",
     "conntrack.txt:1: expected an original and a reply tuple"),
    ("sysctl.txt", "net.ipv4.ip_forward = 1\ngarbage line\n", "sysctl.txt:2:"),
    ("ipset.txt", "add nope 10.0.0.1\n", "ipset.txt:1:"),
    ("nft.json", '{"nftables": [', "nft.json:1:"),
])
def test_bad_file_names_file_and_line(tmp_path: Path, name: str, text: str, where: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(SnapshotError) as e:
        import_dir(tmp_path)
    assert where in e.value.text()


def test_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="no such folder"):
        import_dir(tmp_path / "nope")
    (tmp_path / "f").write_text("x")
    with pytest.raises(SnapshotError, match="not a folder"):
        import_dir(tmp_path / "f")


# -- parser details --------------------------------------------------------------------------------


def test_ip_j_route_quirks() -> None:
    text = """[{"dst": "default", "gateway": "10.99.0.2", "dev": "va0", "table": "100", "metric": 50, "flags": []},
 {"type": "blackhole", "dst": "10.66.0.0/16", "flags": []},
 {"type": "local", "dst": "10.98.0.1", "dev": "va1", "table": "local", "protocol": "kernel", "scope": "host", "prefsrc": "10.98.0.1", "flags": []},
 {"dst": "2001:db8:100::/48", "gateway": "fd99::2", "dev": "va0", "table": "100", "metric": 1024, "flags": [], "pref": "medium"},
 {"type": "unreachable", "dst": "default", "dev": "lo", "metric": 1024, "flags": []},
 {"dst": "10.1.0.0/16", "via": {"family": "inet6", "host": "fe80::1"}, "dev": "va0", "metrics": [{"mtu": 1400}], "flags": ["onlink"]}]"""
    r = tp.parse_ip_route_json(text, "routes.json")
    assert (r[0].family, r[0].table, r[0].dst, r[0].protocol, r[0].type) == (
        Family.IPV4, 100, net("0.0.0.0/0"), "boot", RouteType.UNICAST)
    assert r[1].type is RouteType.BLACKHOLE and r[1].table == 254
    assert r[2].dst == net("10.98.0.1/32") and r[2].table == 255 and r[2].scope == "host"
    assert r[3].family is Family.IPV6
    # address-less default after the first IPv6 route: IPv6 (the kernel dumps v4 then v6)
    assert r[4].family is Family.IPV6 and r[4].dst == net("::/0")
    assert r[5].gateway == ip("fe80::1") and r[5].mtu == 1400 and r[5].flags == ("onlink",)
    assert tp.parse_ip_route_json('[{"type": "unreachable", "dst": "default"}]', "x",
                                  Family.IPV6)[0].dst == net("::/0")


def test_ip_j_rule_quirks() -> None:
    text = """[{"priority": 0, "src": "all", "table": "local"},
 {"priority": 1200, "not": null, "src": "all", "ipproto": "tcp", "dport": 22, "table": "100"},
 {"priority": 1300, "src": "10.1.0.0", "srclen": 16, "sport": "1000-2000", "uid_start": 5, "uid_end": 9, "oif": "eth1", "table": "main"},
 {"priority": 5, "src": "all", "goto": 32766},
 {"priority": 6, "src": "all", "action": "prohibit"},
 {"priority": 7, "src": "all", "l3mdev": null},
 {"priority": 8, "src": "all", "fwmark": "0x1", "table": "main", "suppress_prefixlength": 0}]"""
    r = tp.parse_ip_rule_json(text, "rules.json", Family.IPV4)
    assert r[0].table == 255 and r[0].src is None
    assert r[1].invert and r[1].ipproto == 6 and r[1].dport is not None and r[1].dport.start == 22
    assert r[2].src == net("10.1.0.0/16") and r[2].sport is not None and r[2].sport.end == 2000
    assert r[2].uidrange is not None and (r[2].uidrange.start, r[2].uidrange.end) == (5, 9)
    assert (r[3].action, r[3].goto) == (RuleAction.GOTO, 32766)
    assert r[4].action is RuleAction.PROHIBIT
    assert r[5].l3mdev
    assert (r[6].fwmark, r[6].fwmask, r[6].suppress_prefixlength) == (1, 0xFFFFFFFF, 0)
    assert r[6].text() == "8: from all fwmark 0x1 lookup main suppress_prefixlength 0"


def test_ss_variants() -> None:
    text = (
        'tcp LISTEN 0 128 10.0.0.1%eth0:53 0.0.0.0:* users:(("named",pid=5,fd=20),'
        '("named",pid=6,fd=20)) uid:107 ino:99 sk:1 fwmark:0x10 <->\n'
        "udp UNCONN 0 0 *:5353 *:* ino:100 sk:2 v6only:0 <->\n"
        "tcp ESTAB 0 0 [fd99::1]:8080 [fd99::2]:44528 ino:101\n"
    )
    s = tp.parse_ss(text, "ss.txt")  # -H -O form: no header, one line per socket
    assert (s[0].bound_dev, s[0].uid, s[0].inode, s[0].mark) == ("eth0", 107, 99, 0x10)
    assert [p.pid for p in s[0].processes] == [5, 6]
    assert s[1].local == ip("::") and s[1].family is Family.IPV6 and s[1].remote is None
    assert s[2].remote == ip("fd99::2") and s[2].remote_port == 44528
    no_netid = "State Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n" \
               "LISTEN 0 128 10.99.0.1:2222 0.0.0.0:* users:((\"python\",pid=1,fd=4))\n"
    assert tp.parse_ss(no_netid, "ss")[0].proto == "tcp"


def test_conntrack_nat_status() -> None:
    line = ("ipv4     2 tcp      6 431998 ESTABLISHED src=10.99.0.2 dst=10.99.0.1 sport=37762 "
            "dport=8443 src=10.99.0.1 dst=10.99.0.2 sport=8080 dport=37762 [ASSURED] mark=16 "
            "zone=3 use=1 id=12345\n"
            "udp      17 28 src=10.0.0.5 dst=8.8.8.8 sport=5000 dport=53 src=8.8.8.8 "
            "dst=192.0.2.1 sport=53 dport=5000 mark=0 use=1\n")
    a, b = tp.parse_conntrack(line, "ct")
    assert "DST_NAT" in a.status and "SRC_NAT" not in a.status and (a.mark, a.zone) == (16, 3)
    assert a.reply.sport == 8080
    assert b.family is Family.IPV4 and "SRC_NAT" in b.status and b.tcp_state is None


def test_sosreport_with_only_ip_o_addr_uses_the_link_listing(tmp_path: Path,
                                                              host1: HostSnapshot) -> None:
    sos = tmp_path / "sos"
    shutil.copytree(SOS1, sos)
    (sos / "sos_commands/networking/ip_-d_address").unlink()
    snap = import_dir(sos)
    assert snap.addresses == host1.addresses  # from ip -o addr
    assert snap.interfaces == host1.interfaces  # from ip -s -d link
    assert _part(snap, "interfaces")[0] is PartState.COLLECTED
    (sos / "sos_commands/networking/ip_-s_-d_link").unlink()
    snap = import_dir(sos)
    state, reason = _part(snap, "interfaces")
    assert state is PartState.PARTIAL and reason is not None and "ip -o addr" in reason
