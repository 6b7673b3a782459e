#!/usr/bin/env python3
"""Rebuild the bundled sample snapshots and captures in captures/.

Each sample host is built for real in network namespaces (veth pairs, bridges, iptables,
ip6tables, policy routing, listening processes), real traffic is sent and recorded with
tcpdump on the host's interfaces, and the host is then collected with
``journey snapshot --netns`` (under a private UTS namespace so the snapshot carries the
sample's hostname). Needs root; touches nothing outside the namespaces it creates
(all named ``jcap-*``, deleted at the end even on failure).

Usage:  sudo .venv/bin/python captures/build.py [web|router|docker|ipv6 ...]
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable
RESET = """
for k in net/ipv4/conf/all/rp_filter net/ipv4/conf/default/rp_filter net/ipv4/ip_forward \
         net/ipv4/conf/all/forwarding net/ipv6/conf/all/forwarding net/ipv4/conf/all/accept_local \
         net/ipv4/conf/default/accept_local net/ipv4/conf/all/route_localnet; do
  [ -e /proc/sys/$k ] && echo 0 > /proc/sys/$k || true
done
for k in net/ipv6/conf/all/accept_dad net/ipv6/conf/default/accept_dad \
         net/ipv6/conf/all/router_solicitations net/ipv6/conf/default/router_solicitations \
         net/ipv6/conf/all/accept_ra net/ipv6/conf/default/accept_ra; do
  [ -e /proc/sys/$k ] && echo 0 > /proc/sys/$k || true
done
ip link set lo up
"""

# A tiny server: accepts TCP connections / answers UDP datagrams, runs under a chosen comm name.
SERVER = textwrap.dedent(
    """
    import socket, sys, threading
    def tcp(addr, port, v6only):
        fam = socket.AF_INET6 if ':' in addr else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
        s.bind((addr, port)); s.listen(64)
        while True:
            c, _ = s.accept()
            try:
                c.recv(1024); c.sendall(b"HTTP/1.0 200 OK\\r\\ncontent-length: 2\\r\\n\\r\\nok")
            except OSError:
                pass
            c.close()
    def udp(addr, port):
        fam = socket.AF_INET6 if ':' in addr else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_DGRAM); s.bind((addr, port))
        while True:
            data, peer = s.recvfrom(2048); s.sendto(data, peer)
    for spec in sys.argv[1:]:
        proto, addr, port, *rest = spec.split(",")
        fn = tcp if proto == "tcp" else udp
        args = (addr, int(port), rest == ["v6only"]) if proto == "tcp" else (addr, int(port))
        threading.Thread(target=fn, args=args, daemon=True).start()
    threading.Event().wait()
    """
)

CLIENT = textwrap.dedent(
    """
    import socket, sys, time
    for spec in sys.argv[1:]:
        proto, src, dst, port = spec.split(",")
        fam = socket.AF_INET6 if ':' in dst else socket.AF_INET
        kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        s = socket.socket(fam, kind); s.settimeout(1.0)
        try:
            if src != "-":
                s.bind((src, 0))
            if proto == "tcp":
                s.connect((dst, int(port))); s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n"); s.recv(1024)
            else:
                s.sendto(b"hello", (dst, int(port))); s.recvfrom(2048)
            print("ok", spec)
        except OSError as e:
            print("fail", spec, e)
        finally:
            s.close()
        time.sleep(0.05)
    """
)


def sh(cmd: str, *, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(["sh", "-ec", cmd], capture_output=True, text=True, input=input)
    if check and res.returncode != 0:
        raise RuntimeError(f"{cmd!r} failed: {res.stderr.strip()}")
    return res


class Lab:
    """Namespaces, processes and captures of one sample; all torn down in close()."""

    def __init__(self, sample: str) -> None:
        self.sample = sample
        self.names: list[str] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.bindir = Path(tempfile.mkdtemp(prefix="jcap-bin-"))

    def ns(self, short: str) -> str:
        name = f"jcap-{self.sample}-{short}"
        sh(f"ip netns del {name} 2>/dev/null || true")
        sh(f"ip netns add {name}")
        self.names.append(name)
        self.run(name, RESET)
        return name

    def run(self, ns: str, script: str, *, check: bool = True, input: str | None = None) -> str:
        res = subprocess.run(["ip", "netns", "exec", ns, "sh", "-ec", script], capture_output=True,
                             text=True, input=input)
        if check and res.returncode != 0:
            raise RuntimeError(f"[{ns}] {script.strip()[:200]!r} failed: {res.stderr.strip()}")
        return res.stdout

    def link(self, a: str, a_if: str, b: str, b_if: str) -> None:
        tmp = f"jcapt{len(self.names)}{abs(hash(a_if)) % 10000}"
        self.run(a, f"ip link add {a_if} type veth peer name {tmp}; ip link set {tmp} netns {b}; "
                    f"ip link set {a_if} up")
        self.run(b, f"ip link set {tmp} name {b_if}; ip link set {b_if} up")
        for ns, ifname in ((a, a_if), (b, b_if)):
            if shutil.which("ethtool"):
                self.run(ns, f"ethtool -K {ifname} rx off tx off tso off gso off gro off", check=False)

    def program(self, name: str) -> str:
        """A symlink to this Python under a daemon's name, so the socket's process is 'nginx' etc."""
        path = self.bindir / name
        if not path.exists():
            path.symlink_to(os.path.realpath(PY))
        return str(path)

    def serve(self, ns: str, comm: str, *specs: str) -> None:
        p = subprocess.Popen(["ip", "netns", "exec", ns, self.program(comm), "-c", SERVER, *specs],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)

    def clients(self, ns: str, *specs: str) -> str:
        out = subprocess.run(["ip", "netns", "exec", ns, self.program("curl"), "-c", CLIENT, *specs],
                             capture_output=True, text=True, timeout=60)
        return out.stdout

    @contextlib.contextmanager
    def capture(self, ns: str, ifname: str, out: Path) -> Iterator[None]:
        tmp = self.bindir / out.name
        p = subprocess.Popen(["ip", "netns", "exec", ns, "tcpdump", "-U", "-n", "-s", "0", "-i", ifname,
                              "-w", str(tmp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.8)
        try:
            yield
        finally:
            time.sleep(0.5)
            p.terminate()
            p.wait(timeout=10)
            shutil.copyfile(tmp, out)

    def snapshot(self, ns: str, hostname: str, out: Path) -> None:
        journey = [PY, "-m", "journey"]
        cmd = ["unshare", "--uts", "sh", "-ec",
               f'hostname {hostname}; exec "$@"', "sh", *journey, "snapshot", "--netns", ns,
               "-o", str(out), "--force"]
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent)
        if res.returncode != 0:
            raise RuntimeError(f"journey snapshot failed: {res.stderr.strip()}")
        print(f"  {out.name}: {res.stderr.strip()}")

    def close(self) -> None:
        for p in self.procs:
            with contextlib.suppress(Exception):
                p.kill()
                p.wait(timeout=5)
        for name in self.names:
            pids = sh(f"ip netns pids {name} 2>/dev/null || true", check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(Exception):
                    os.kill(int(pid), 9)
            sh(f"ip netns del {name} 2>/dev/null || true", check=False)
        shutil.rmtree(self.bindir, ignore_errors=True)


def neigh(lab: Lab, ns: str, ifname: str, addr: str, peer_ns: str, peer_if: str) -> None:
    """A permanent neighbour entry for addr (the peer's MAC), as a static lab would have."""
    mac = lab.run(peer_ns, f"cat /sys/class/net/{peer_if}/address").strip()
    lab.run(ns, f"ip neigh replace {addr} lladdr {mac} dev {ifname} nud permanent")


# --------------------------------------------------------------------------------------------
def build_web(lab: Lab) -> None:
    """web01: a web server with a host firewall (iptables-nft, ip6tables), nginx + sshd + DNS."""
    host, net = lab.ns("host"), lab.ns("net")
    lab.link(host, "eth0", net, "gw0")
    lab.run(host, """
        ip addr add 192.0.2.10/24 dev eth0
        ip addr add 2001:db8:10::10/64 dev eth0 nodad
        ip route add default via 192.0.2.1 dev eth0 proto static
        ip -6 route add default via 2001:db8:10::1 dev eth0 proto static
        echo 1 > /proc/sys/net/ipv4/conf/all/rp_filter
        echo 1 > /proc/sys/net/ipv4/conf/eth0/rp_filter
    """)
    lab.run(net, """
        ip addr add 192.0.2.1/24 dev gw0
        ip addr add 2001:db8:10::1/64 dev gw0 nodad
        ip addr add 198.51.100.7/32 dev lo
        ip addr add 203.0.113.9/32 dev lo
        ip addr add 2001:db8:99::7/128 dev lo nodad
    """)
    lab.run(host, "iptables-restore", input=textwrap.dedent("""\
        *filter
        :INPUT DROP [0:0]
        :FORWARD DROP [0:0]
        :OUTPUT ACCEPT [0:0]
        :SSH-ADMINS - [0:0]
        -A INPUT -i lo -j ACCEPT
        -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
        -A INPUT -m conntrack --ctstate INVALID -j DROP
        -A INPUT -p icmp -m icmp --icmp-type 8 -m limit --limit 10/sec --limit-burst 20 -j ACCEPT
        -A INPUT -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -j SSH-ADMINS
        -A INPUT -p tcp -m multiport --dports 80,443 -m comment --comment "nginx" -j ACCEPT
        -A INPUT -p udp -m udp --dport 53 -s 192.0.2.0/24 -j ACCEPT
        -A INPUT -m limit --limit 5/min -j LOG --log-prefix "INPUT drop: "
        -A INPUT -p tcp -j REJECT --reject-with tcp-reset
        -A INPUT -p udp -j REJECT --reject-with icmp-port-unreachable
        -A SSH-ADMINS -s 198.51.100.0/24 -j ACCEPT
        -A SSH-ADMINS -j DROP
        COMMIT
        """))
    lab.run(host, "ip6tables-restore", input=textwrap.dedent("""\
        *filter
        :INPUT DROP [0:0]
        :FORWARD DROP [0:0]
        :OUTPUT ACCEPT [0:0]
        -A INPUT -i lo -j ACCEPT
        -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
        -A INPUT -p ipv6-icmp -j ACCEPT
        -A INPUT -p tcp -m multiport --dports 80,443 -j ACCEPT
        -A INPUT -p tcp -m tcp --dport 22 -s 2001:db8:99::/64 -j ACCEPT
        -A INPUT -j REJECT --reject-with icmp6-adm-prohibited
        COMMIT
        """))
    neigh(lab, host, "eth0", "192.0.2.1", net, "gw0")
    neigh(lab, net, "gw0", "192.0.2.10", host, "eth0")
    neigh(lab, host, "eth0", "2001:db8:10::1", net, "gw0")
    neigh(lab, net, "gw0", "2001:db8:10::10", host, "eth0")
    lab.run(net, "ip route add default via 192.0.2.10 dev gw0 || true", check=False)
    lab.serve(host, "nginx", "tcp,0.0.0.0,80", "tcp,::,443", "tcp,::,80,v6only")
    lab.serve(host, "sshd", "tcp,0.0.0.0,22", "tcp,::,22,v6only")
    lab.serve(host, "named", "udp,192.0.2.10,53", "udp,127.0.0.1,53")
    time.sleep(0.5)
    with lab.capture(host, "eth0", HERE / "web01.pcap"):
        lab.clients(net, "tcp,198.51.100.7,192.0.2.10,80", "tcp,203.0.113.9,192.0.2.10,443",
                    "tcp,198.51.100.7,192.0.2.10,22", "tcp,203.0.113.9,192.0.2.10,22",
                    "udp,192.0.2.1,192.0.2.10,53", "udp,203.0.113.9,192.0.2.10,123",
                    "tcp,203.0.113.9,192.0.2.10,8080",
                    "tcp,2001:db8:99::7,2001:db8:10::10,443", "tcp,2001:db8:99::7,2001:db8:10::10,22")
        lab.run(net, "ping -c 2 -i 0.2 -I 203.0.113.9 192.0.2.10 >/dev/null 2>&1 || true", check=False)
        # keep one connection open so the snapshot has an established socket + conntrack entry
        lab.procs.append(subprocess.Popen(
            ["ip", "netns", "exec", net, PY, "-c",
             "import socket,time;s=socket.create_connection(('192.0.2.10',22),source_address=('198.51.100.7',0));time.sleep(120)"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(0.5)
    lab.snapshot(host, "web01", HERE / "web01.json.gz")


def build_router(lab: Lab) -> None:
    """gw1: a NAT router with two uplinks, port forwards and policy routing by fwmark."""
    r, isp, isp2, lan, dmz = (lab.ns(n) for n in ("r", "isp", "isp2", "lan", "dmz"))
    lab.link(r, "wan0", isp, "up0")
    lab.link(r, "wan1", isp2, "up0")
    lab.link(r, "lan0", lan, "eth0")
    lab.link(r, "dmz0", dmz, "eth0")
    lab.run(r, """
        ip addr add 203.0.113.2/24 dev wan0
        ip addr add 198.51.100.2/24 dev wan1
        ip addr add 192.168.1.1/24 dev lan0
        ip addr add 10.10.0.1/24 dev dmz0
        ip route add default via 203.0.113.1 dev wan0 proto static
        ip route add default via 198.51.100.1 dev wan1 table 200 proto static
        ip route add 192.168.1.0/24 dev lan0 table 200
        ip route add 10.10.0.0/24 dev dmz0 table 200
        ip route add blackhole 10.255.0.0/16
        ip route add unreachable 192.168.99.0/24
        ip rule add fwmark 0x2/0xff lookup 200 priority 1000
        ip rule add from 10.10.0.0/24 iif dmz0 lookup 200 priority 1100
        echo 1 > /proc/sys/net/ipv4/ip_forward
        echo 2 > /proc/sys/net/ipv4/conf/all/rp_filter
        echo 2 > /proc/sys/net/ipv4/conf/wan0/rp_filter
        echo 2 > /proc/sys/net/ipv4/conf/wan1/rp_filter
    """)
    lab.run(isp, "ip addr add 203.0.113.1/24 dev up0; ip addr add 8.8.8.8/32 dev lo; "
                 "ip addr add 93.184.216.34/32 dev lo; ip route add default via 203.0.113.2")
    lab.run(isp2, "ip addr add 198.51.100.1/24 dev up0; ip addr add 8.8.8.8/32 dev lo; "
                  "ip route add default via 198.51.100.2")
    lab.run(lan, "ip addr add 192.168.1.50/24 dev eth0; ip route add default via 192.168.1.1")
    lab.run(dmz, "ip addr add 10.10.0.10/24 dev eth0; ip route add default via 10.10.0.1")
    for ns, ifn, addr, pns, pif in ((r, "wan0", "203.0.113.1", isp, "up0"), (r, "wan1", "198.51.100.1", isp2, "up0"),
                                    (r, "lan0", "192.168.1.50", lan, "eth0"), (r, "dmz0", "10.10.0.10", dmz, "eth0"),
                                    (isp, "up0", "203.0.113.2", r, "wan0"), (isp2, "up0", "198.51.100.2", r, "wan1"),
                                    (lan, "eth0", "192.168.1.1", r, "lan0"), (dmz, "eth0", "10.10.0.1", r, "dmz0")):
        neigh(lab, ns, ifn, addr, pns, pif)
    lab.run(r, "iptables-restore", input=textwrap.dedent("""\
        *mangle
        :PREROUTING ACCEPT [0:0]
        :INPUT ACCEPT [0:0]
        :FORWARD ACCEPT [0:0]
        :OUTPUT ACCEPT [0:0]
        :POSTROUTING ACCEPT [0:0]
        -A PREROUTING -m connmark ! --mark 0x0/0xff -j CONNMARK --restore-mark --nfmask 0xff --ctmask 0xff
        -A PREROUTING -i lan0 -p tcp -m multiport --dports 25,587 -j MARK --set-xmark 0x2/0xff
        -A PREROUTING -m mark --mark 0x2/0xff -j CONNMARK --save-mark --nfmask 0xff --ctmask 0xff
        -A FORWARD -o wan0 -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu
        COMMIT
        *nat
        :PREROUTING ACCEPT [0:0]
        :INPUT ACCEPT [0:0]
        :OUTPUT ACCEPT [0:0]
        :POSTROUTING ACCEPT [0:0]
        -A PREROUTING -i wan0 -p tcp -m tcp --dport 443 -j DNAT --to-destination 10.10.0.10:443
        -A PREROUTING -i wan0 -p tcp -m tcp --dport 2222 -j DNAT --to-destination 192.168.1.50:22
        -A PREROUTING -i wan0 -p udp -m udp --dport 51820 -j DNAT --to-destination 10.10.0.10
        -A POSTROUTING -o wan0 -j MASQUERADE
        -A POSTROUTING -o wan1 -s 192.168.1.0/24 -j SNAT --to-source 198.51.100.2
        COMMIT
        *filter
        :INPUT DROP [0:0]
        :FORWARD DROP [0:0]
        :OUTPUT ACCEPT [0:0]
        :LAN-IN - [0:0]
        -A INPUT -i lo -j ACCEPT
        -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
        -A INPUT -i lan0 -j LAN-IN
        -A INPUT -p icmp -j ACCEPT
        -A LAN-IN -p tcp -m tcp --dport 22 -j ACCEPT
        -A LAN-IN -p udp -m multiport --dports 53,67 -j ACCEPT
        -A LAN-IN -j RETURN
        -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
        -A FORWARD -m conntrack --ctstate INVALID -j DROP
        -A FORWARD -i lan0 -o wan0 -j ACCEPT
        -A FORWARD -i lan0 -o wan1 -j ACCEPT
        -A FORWARD -i dmz0 -o wan0 -j ACCEPT
        -A FORWARD -m conntrack --ctstate DNAT -j ACCEPT
        -A FORWARD -i dmz0 -o lan0 -j REJECT --reject-with icmp-host-prohibited
        -A FORWARD -j LOG --log-prefix "FWD drop: "
        COMMIT
        """))
    lab.serve(dmz, "nginx", "tcp,0.0.0.0,443", "udp,0.0.0.0,51820")
    lab.serve(lan, "sshd", "tcp,0.0.0.0,22")
    lab.serve(isp, "nginx", "tcp,0.0.0.0,80", "tcp,0.0.0.0,443")
    lab.serve(isp2, "postfix", "tcp,0.0.0.0,25")
    lab.serve(r, "dnsmasq", "udp,192.168.1.1,53", "tcp,192.168.1.1,53")
    lab.serve(r, "sshd", "tcp,0.0.0.0,22")
    time.sleep(0.5)
    with lab.capture(r, "any", HERE / "gw1-any.pcap"):
        lab.clients(lan, "tcp,-,93.184.216.34,80", "tcp,-,8.8.8.8,25", "udp,-,192.168.1.1,53",
                    "tcp,-,192.168.1.1,22", "tcp,-,10.255.1.1,80")
        lab.clients(isp, "tcp,-,203.0.113.2,443", "tcp,-,203.0.113.2,2222", "udp,-,203.0.113.2,51820",
                    "tcp,-,203.0.113.2,22")
        lab.clients(dmz, "tcp,-,192.168.1.50,22", "tcp,-,93.184.216.34,443")
        lab.procs.append(subprocess.Popen(
            ["ip", "netns", "exec", isp, PY, "-c",
             "import socket,time;s=socket.create_connection(('203.0.113.2',443));time.sleep(120)"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(0.5)
    lab.snapshot(r, "gw1", HERE / "gw1.json.gz")


DOCKER_RULES = """\
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A POSTROUTING -s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE
-A POSTROUTING -s 172.17.0.3/32 -d 172.17.0.3/32 -p tcp -m tcp --dport 5432 -j MASQUERADE
-A DOCKER -i docker0 -j RETURN
-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80
-A DOCKER ! -i docker0 -p tcp -m tcp -d 127.0.0.1 --dport 5432 -j DNAT --to-destination 172.17.0.3:5432
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
-A DOCKER -d 172.17.0.3/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 5432 -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-1 -j RETURN
-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
-A DOCKER-ISOLATION-STAGE-2 -j RETURN
-A DOCKER-USER -s 203.0.113.0/24 -p tcp -m tcp --dport 80 -j DROP
-A DOCKER-USER -j RETURN
COMMIT
"""


def build_docker(lab: Lab) -> None:
    """dock1: a Docker-style host: docker0 bridge, two containers, DOCKER chains, published ports."""
    h, out, c1, c2 = (lab.ns(n) for n in ("h", "out", "web", "db"))
    lab.link(h, "eth0", out, "gw0")
    lab.run(h, """
        ip link add docker0 type bridge
        ip addr add 172.17.0.1/16 dev docker0
        ip link set docker0 up
        ip addr add 192.0.2.30/24 dev eth0
        ip route add default via 192.0.2.1 dev eth0 proto dhcp metric 100
        echo 1 > /proc/sys/net/ipv4/ip_forward
        echo 1 > /proc/sys/net/ipv4/conf/all/route_localnet
    """)
    for ns, veth, addr in ((c1, "vethweb", "172.17.0.2"), (c2, "vethdb", "172.17.0.3")):
        lab.link(h, veth, ns, "eth0")
        lab.run(h, f"ip link set {veth} master docker0")
        lab.run(ns, f"ip addr add {addr}/16 dev eth0; ip route add default via 172.17.0.1")
    lab.run(out, "ip addr add 192.0.2.1/24 dev gw0; ip addr add 203.0.113.50/32 dev lo; "
                 "ip addr add 198.51.100.20/32 dev lo; ip route add 172.17.0.0/16 via 192.0.2.30 || true")
    neigh(lab, h, "eth0", "192.0.2.1", out, "gw0")
    neigh(lab, out, "gw0", "192.0.2.30", h, "eth0")
    lab.run(h, "iptables-restore", input=DOCKER_RULES)
    lab.serve(c1, "nginx", "tcp,0.0.0.0,80")
    lab.serve(c2, "postgres", "tcp,0.0.0.0,5432")
    lab.serve(h, "dockerd", "tcp,127.0.0.1,2375")
    lab.serve(h, "sshd", "tcp,0.0.0.0,22")
    time.sleep(0.5)
    with lab.capture(h, "eth0", HERE / "dock1.pcap"):
        lab.clients(out, "tcp,198.51.100.20,192.0.2.30,8080", "tcp,203.0.113.50,192.0.2.30,8080",
                    "tcp,198.51.100.20,192.0.2.30,22", "tcp,198.51.100.20,192.0.2.30,5432")
        lab.clients(c1, "tcp,-,198.51.100.20,80", "tcp,-,172.17.0.3,5432")
        lab.procs.append(subprocess.Popen(
            ["ip", "netns", "exec", out, PY, "-c",
             "import socket,time;s=socket.create_connection(('192.0.2.30',8080),source_address=('198.51.100.20',0));time.sleep(120)"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(0.5)
    lab.snapshot(h, "dock1", HERE / "dock1.json.gz")


def build_ipv6(lab: Lab) -> None:
    """v6host: a dual-stack host, IPv6 firewall with ip6tables, v6-only and dual-stack listeners."""
    h, net = lab.ns("h"), lab.ns("net")
    lab.link(h, "eth0", net, "gw0")
    lab.run(h, """
        ip addr add 192.0.2.40/24 dev eth0
        ip addr add 2001:db8:40::10/64 dev eth0 nodad
        ip addr add 2001:db8:40::53/64 dev eth0 nodad
        ip route add default via 192.0.2.1 dev eth0
        ip -6 route add default via fe80::1 dev eth0 metric 1024
        ip -6 route add 2001:db8:beef::/48 via 2001:db8:40::2 dev eth0 table 300
        ip -6 rule add from 2001:db8:40::53 lookup 300 priority 300
        ip -6 route add unreachable 2001:db8:dead::/48
    """)
    lab.run(net, """
        ip addr add 192.0.2.1/24 dev gw0
        ip addr add 2001:db8:40::1/64 dev gw0 nodad
        ip addr add fe80::1/64 dev gw0 nodad
        ip addr add 2001:db8:40::2/64 dev gw0 nodad
        ip addr add 2001:db8:77::7/128 dev lo nodad
        ip -6 route add default via 2001:db8:40::10 dev gw0
    """)
    neigh(lab, h, "eth0", "fe80::1", net, "gw0")
    neigh(lab, h, "eth0", "2001:db8:40::2", net, "gw0")
    neigh(lab, h, "eth0", "192.0.2.1", net, "gw0")
    neigh(lab, net, "gw0", "2001:db8:40::10", h, "eth0")
    lab.run(h, "ip6tables-restore", input=textwrap.dedent("""\
        *filter
        :INPUT DROP [0:0]
        :FORWARD DROP [0:0]
        :OUTPUT ACCEPT [0:0]
        -A INPUT -i lo -j ACCEPT
        -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
        -A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 135 -j ACCEPT
        -A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 136 -j ACCEPT
        -A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 128 -m limit --limit 5/sec -j ACCEPT
        -A INPUT -s fe80::/10 -p udp -m udp --dport 546 -j ACCEPT
        -A INPUT -p tcp -m tcp --dport 22 -s 2001:db8:77::/48 -j ACCEPT
        -A INPUT -p tcp -m multiport --dports 80,443 -j ACCEPT
        -A INPUT -d 2001:db8:40::53/128 -p udp -m udp --dport 53 -j ACCEPT
        -A INPUT -p tcp -j REJECT --reject-with tcp-reset
        -A INPUT -j REJECT --reject-with icmp6-adm-prohibited
        COMMIT
        *mangle
        :PREROUTING ACCEPT [0:0]
        :INPUT ACCEPT [0:0]
        :FORWARD ACCEPT [0:0]
        :OUTPUT ACCEPT [0:0]
        :POSTROUTING ACCEPT [0:0]
        -A OUTPUT -p tcp -m tcp --dport 443 -j DSCP --set-dscp-class AF21
        COMMIT
        """))
    lab.run(h, "iptables-restore", input=textwrap.dedent("""\
        *filter
        :INPUT ACCEPT [0:0]
        :FORWARD DROP [0:0]
        :OUTPUT ACCEPT [0:0]
        -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
        -A INPUT -p tcp -m tcp --dport 443 -j ACCEPT
        COMMIT
        """))
    lab.serve(h, "nginx", "tcp,::,443", "tcp,::,80,v6only")
    lab.serve(h, "sshd", "tcp,::,22,v6only")
    lab.serve(h, "unbound", "udp,2001:db8:40::53,53")
    time.sleep(0.5)
    with lab.capture(h, "eth0", HERE / "v6host.pcap"):
        lab.clients(net, "tcp,2001:db8:77::7,2001:db8:40::10,443", "tcp,2001:db8:77::7,2001:db8:40::10,22",
                    "tcp,2001:db8:40::1,2001:db8:40::10,22", "udp,2001:db8:40::1,2001:db8:40::53,53",
                    "udp,2001:db8:40::1,2001:db8:40::10,123", "tcp,192.0.2.1,192.0.2.40,443",
                    "tcp,192.0.2.1,192.0.2.40,80")
        lab.run(net, "ping -6 -c 2 -i 0.2 2001:db8:40::10 >/dev/null 2>&1 || true", check=False)
        time.sleep(0.3)
    lab.snapshot(h, "v6host", HERE / "v6host.json.gz")


SAMPLES: dict[str, Callable[[Lab], None]] = {
    "web": build_web,
    "router": build_router,
    "docker": build_docker,
    "ipv6": build_ipv6,
}


def main(argv: list[str]) -> int:
    if os.geteuid() != 0:
        print("captures/build.py needs root (network namespaces)", file=sys.stderr)
        return 2
    chosen = argv or list(SAMPLES)
    for name in chosen:
        print(f"building {name} ...")
        lab = Lab(name)
        try:
            SAMPLES[name](lab)
        finally:
            lab.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
