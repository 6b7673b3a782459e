"""Kernel differential harness: build a scenario in namespaces, send its packets for real, record.

A ``Scenario`` is data: links from the HOST namespace to neighbour namespaces, a setup script,
rulesets (iptables-restore / ip6tables-restore / legacy / nft text), listeners, and packets as
journey packet specs. ``Lab`` builds it (every namespace through ``tests.kernelutil.Netns``, all
deleted in ``finally``), collects the host snapshot with journey's own collector *before* it adds
its trace table, then sends each packet and returns a ``RawObservation`` per packet, which
``tests.kernel.observe`` turns into the engine's vocabulary.

How packets are sent (no subprocess per packet; sockets are opened in the namespace from a short
thread that ``setns()``-es, so the socket lives in that namespace):

- ``in IFACE ...`` packets: a raw Ethernet frame (scapy builds it in this process) is written on
  an ``AF_PACKET`` socket in the neighbour namespace attached to IFACE. Neighbours have no IP
  addresses and IPv6 disabled, so they never answer (no RST/ICMP/MLD noise from their stacks);
  the host has permanent neighbour entries for them. TCP sequence numbers follow the flow:
  every TCP segment seen on a wire updates the next sequence number per direction.
- ``local ...`` packets: real sockets in the host namespace (connect() for a TCP SYN, sendto()
  for UDP, a raw ICMP socket for ICMP), with SO_MARK / IP_TTL / IP_TOS / PMTU discovery set from
  the spec and the uid set with ``setfsuid`` in the creating thread (socket owner). Other TCP
  flags need exact headers: an IPPROTO_RAW socket (KERNEL.md explains how it differs).

What is recorded per packet: frames received by every neighbour (what left the host on each
link) and frames sent on the host's ``lo``; ``nft monitor trace`` lines (a trace table in its own
inet table: ``meta nftrace set 1`` at -350 on prerouting/output, empty chains at +10000 on every
hook, and ``ct state``/``ct direction`` rules at -199 only for families where the scenario
already uses conntrack, so that tracing never registers conntrack itself); ``iptables-save -c``
counters (nft and legacy, v4 and v6); ``/proc/net/{snmp,netstat,snmp6}``; ``conntrack -L``;
what the listeners received; the errno of a local send.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno as errno_mod
import os
import re
import select
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tests.kernelutil import Netns, run

PREFIX = "kd"
T = TypeVar("T")

# ---------------------------------------------------------------------------------------------
# scenario data
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    """A veth from the host (``host_if``) to a neighbour namespace of its own.

    ``peers`` are the addresses the neighbour uses (no address is configured in the neighbour:
    the host gets permanent neighbour entries for them, so no ARP/ND is needed either way).
    """

    host_if: str
    host_addrs: tuple[str, ...] = ()  # CIDR, e.g. "10.1.0.1/24", "fd01::1/64"
    peers: tuple[str, ...] = ()  # e.g. "10.1.0.2", "fd01::2"
    mtu: int | None = None


@dataclass(frozen=True)
class Listener:
    """A socket in the host namespace that records what it receives (tcp: listen + accept)."""

    proto: str  # tcp | udp
    addr: str  # "0.0.0.0", "::", "10.1.0.1"
    port: int
    # socket options (set before bind): SO_REUSEPORT, IPV6_V6ONLY (a ``::`` socket is
    # dual-stack unless set), SO_BINDTODEVICE
    reuseport: bool = False
    v6only: bool = False
    device: str | None = None
    # connect() after bind, before the snapshot: a connected UDP socket, or for tcp a *client*
    # (no listen) whose connection to a listener of the scenario is established over lo
    connect: tuple[str, int] | None = None

    def text(self) -> str:
        a = f"[{self.addr}]" if ":" in self.addr else self.addr
        return f"{self.proto} {a}:{self.port}"


@dataclass(frozen=True)
class Expect:
    """What the kernel is expected to do with one packet (asserted against the observation).

    Only the fields given are checked. ``rules`` lists the rules the packet itself hit, as
    ``"filter/INPUT#2"`` (iptables-nft), ``"legacy:filter/INPUT#1"`` or
    ``"native:TABLE/CHAIN#3"`` (nft), in hit order. ``replies`` as ``"tcp-rst"``, ``"syn-ack"``,
    ``"icmp 3/3"``, ``"icmpv6 1/4"``. ``final`` maps header fields of the final packet
    (src, dst, sport, dport, ttl, tos, mark) to their expected text.
    """

    disposition: str | None = None
    egress: str | None = None
    replies: tuple[str, ...] | None = None
    rules: tuple[str, ...] | None = None
    ct: str | None = None
    final: dict[str, str] | None = None
    reason: str | None = None  # a kernel reason word from observe (rp-filter, no-socket, ...)


def K(disposition: str | None = None, egress: str | None = None, *,
      replies: tuple[str, ...] | None = None, rules: tuple[str, ...] | None = None,
      ct: str | None = None, reason: str | None = None, **final: str | int) -> Expect:
    """Shorthand for ``Expect``: keyword arguments not named above are final header fields."""
    return Expect(disposition, egress, replies, rules, ct,
                  {k: str(v) for k, v in final.items()} or None, reason)


@dataclass(frozen=True)
class Send:
    """One packet of a scenario: a journey packet spec and the expected kernel result."""

    spec: str
    expect: Expect = field(default_factory=Expect)
    quote: bool = False  # ICMP error: quote the last frame this neighbour received
    payload: bytes = b""
    note: str = ""


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    links: tuple[Link, ...]
    packets: tuple[Send, ...]
    setup: str = ""  # sh script in the host namespace (after links and addresses)
    iptables: str = ""  # iptables-restore text (nft backend)
    ip6tables: str = ""
    iptables_legacy: str = ""
    ip6tables_legacy: str = ""
    nft: str = ""  # nft -f text (native tables)
    listeners: tuple[Listener, ...] = ()
    tools: tuple[str, ...] = ()  # extra commands the scenario needs (ipset, ...)
    tags: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# namespaces from threads
# ---------------------------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000
SO_MARK = 36
IP_MTU_DISCOVER = 10
IPV6_MTU_DISCOVER = 23
PMTUDISC_DONT, PMTUDISC_DO = 0, 2
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def in_netns(name: str, fn: Callable[[], T], *, fsuid: int | None = None) -> T:
    """Run ``fn`` in a fresh thread that entered namespace ``name`` (and fsuid), return its value.

    Sockets created there stay in that namespace; files under ``/proc/thread-self/net`` show it.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            fd = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns {name}")
            finally:
                os.close(fd)
            if fsuid is not None:
                _libc.setfsuid(fsuid)
            try:
                box["value"] = fn()
            finally:
                if fsuid is not None:
                    _libc.setfsuid(0)
        except BaseException as e:  # re-raised in the caller
            box["error"] = e

    t = threading.Thread(target=target, name=f"netns-{name}")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def mac_of(link_index: int, side: int) -> str:
    """Deterministic MACs: host side 02:00:00:00:<link>:01, neighbour side ...:02."""
    return f"02:00:00:00:{link_index:02x}:{side:02x}"


# ---------------------------------------------------------------------------------------------
# raw records
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    link: str  # host interface name it left through ("lo" for loopback)
    data: bytes
    t: float


@dataclass(frozen=True)
class ListenerEvent:
    listener: Listener
    kind: str  # datagram | accept | data
    peer: tuple[str, int]
    local: tuple[str, int]
    size: int


@dataclass
class RawObservation:
    """Everything recorded around one packet (parsed by ``observe``)."""

    index: int
    send: Send
    packet: Any  # journey.model.packet.Packet (as parsed from the spec)
    sent: bytes | None  # the frame / datagram actually written
    frames: list[Frame] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)
    counters_before: dict[tuple[str, str, str, str, int], int] = field(default_factory=dict)
    counters_after: dict[tuple[str, str, str, str, int], int] = field(default_factory=dict)
    snmp_before: dict[str, int] = field(default_factory=dict)
    snmp_after: dict[str, int] = field(default_factory=dict)
    conntrack: list[str] = field(default_factory=list)
    listener_events: list[ListenerEvent] = field(default_factory=list)
    send_errno: int | None = None
    sock_error: int | None = None
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# frame building
# ---------------------------------------------------------------------------------------------


def _proto_num(pkt: Any) -> int:
    return int(pkt.proto)


def build_ip(pkt: Any, *, seq: int = 0, ack: int = 0, ipid: int = 1, quote: bytes | None = None,
             payload: bytes = b"") -> bytes:
    """The IP packet (bytes) for a journey ``Packet``: headers from the spec, seq/ack given."""
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.inet6 import (
        ICMPv6DestUnreach,
        ICMPv6EchoReply,
        ICMPv6EchoRequest,
        ICMPv6PacketTooBig,
        ICMPv6ParamProblem,
        ICMPv6TimeExceeded,
        ICMPv6Unknown,
        IPv6,
        IPv6ExtHdrFragment,
    )
    from scapy.packet import Raw

    v6 = pkt.family.value == "ipv6"
    proto = _proto_num(pkt)
    body = payload or pkt.payload or b""
    l4: Any
    if pkt.frag_offset:
        l4 = Raw(body or b"\x00" * 8)
    elif proto == 6:
        flags = pkt.tcp_flags or "S"
        l4 = TCP(sport=pkt.sport or 40000, dport=pkt.dport or 0, flags=flags, seq=seq,
                 ack=ack if "A" in flags else 0, window=64240)
    elif proto == 17:
        l4 = UDP(sport=pkt.sport or 40000, dport=pkt.dport or 0)
    elif proto == 1:
        t = 8 if pkt.icmp_type is None else pkt.icmp_type
        l4 = ICMP(type=t, code=pkt.icmp_code or 0)
        if t in (0, 8, 13, 14):
            l4.id = pkt.icmp_id or 0x4b44
            l4.seq = 1
    elif proto == 58:
        t = 128 if pkt.icmp_type is None else pkt.icmp_type
        c = pkt.icmp_code or 0
        if t == 128:
            l4 = ICMPv6EchoRequest(id=pkt.icmp_id or 0x4b44, seq=1)
        elif t == 129:
            l4 = ICMPv6EchoReply(id=pkt.icmp_id or 0x4b44, seq=1)
        elif t == 1:
            l4 = ICMPv6DestUnreach(code=c)
        elif t == 2:
            l4 = ICMPv6PacketTooBig(code=c, mtu=1280)
        elif t == 3:
            l4 = ICMPv6TimeExceeded(code=c)
        elif t == 4:
            l4 = ICMPv6ParamProblem(code=c)
        else:
            l4 = ICMPv6Unknown(type=t, code=c)
    else:
        l4 = Raw(body or b"\x00" * 8)
    if quote is not None and proto in (1, 58):
        l4 = l4 / Raw(quote)
    elif body and not isinstance(l4, Raw):
        l4 = l4 / Raw(body)
    if v6:
        ip: Any = IPv6(src=str(pkt.src), dst=str(pkt.dst), hlim=pkt.ttl, tc=pkt.tos)
        if pkt.frag_offset or pkt.more_fragments:
            ip = ip / IPv6ExtHdrFragment(offset=pkt.frag_offset // 8, m=int(pkt.more_fragments),
                                         id=ipid, nh=proto)
        pdu = ip / l4
        if pkt.length and not pkt.frag_offset:
            pad = pkt.length - len(pdu)
            if pad > 0:
                pdu = pdu / Raw(b"\x00" * pad)
        return bytes(pdu)
    flags = (2 if pkt.df else 0) | (1 if pkt.more_fragments else 0)
    ip = IP(src=str(pkt.src), dst=str(pkt.dst), ttl=pkt.ttl, tos=pkt.tos, id=ipid, flags=flags,
            frag=pkt.frag_offset // 8, proto=proto)
    pdu = ip / l4
    if pkt.length:
        pad = pkt.length - len(pdu)
        if pad > 0:
            pdu = pdu / Raw(b"\x00" * pad)
    raw = bytearray(bytes(pdu))
    if pkt.checksum_ok is False:
        raw[10] ^= 0xFF
    return bytes(raw)


def build_frame(ip: bytes, *, src_mac: str, dst_mac: str, v6: bool) -> bytes:
    def mac(m: str) -> bytes:
        return bytes(int(x, 16) for x in m.split(":"))

    return mac(dst_mac) + mac(src_mac) + struct.pack("!H", 0x86DD if v6 else 0x0800) + ip


# ---------------------------------------------------------------------------------------------
# the lab
# ---------------------------------------------------------------------------------------------

TRACE_TABLE = "kd_trace"
_CT_HINT = re.compile(
    r"(ctstate|--state|conntrack|CONNMARK|connmark|DNAT|SNAT|MASQUERADE|REDIRECT|NOTRACK|-j CT|"
    r"\bct\b|\bnat\b|masquerade|redirect|-t nat|\*nat)")


def _uses_conntrack(text: str) -> bool:
    return bool(text.strip()) and bool(_CT_HINT.search(text))


@dataclass
class _Listening:
    listener: Listener
    sock: socket.socket
    conns: list[socket.socket] = field(default_factory=list)


class Lab:
    """A built scenario: the host namespace, one neighbour namespace per link, sockets, trace.

    Use as a context manager: everything (namespaces, sockets, the monitor process) is released
    on exit even when building fails half-way.
    """

    def __init__(self, scenario: Scenario) -> None:
        self.sc = scenario
        self.host: Netns | None = None
        self.neigh: dict[str, Netns] = {}  # host_if -> neighbour ns
        self.nsock: dict[str, socket.socket] = {}  # host_if -> AF_PACKET socket in the neighbour
        self.lo_sock: socket.socket | None = None
        self.listening: list[_Listening] = []
        self.keep: list[socket.socket] = []  # local sockets left open until the end
        self.monitor: subprocess.Popen[str] | None = None
        self.trace_lines: list[str] = []
        self._trace_lock = threading.Lock()
        self.snapshot: Any = None
        self.snapshot_error: str | None = None
        self.nft_rules: dict[tuple[str, str, str, int], tuple[str, int]] = {}
        self.ipt_tables: set[tuple[str, str]] = set()  # (nft family, table) loaded by iptables-nft
        self.next_seq: dict[tuple[str, int, str, int], int] = {}
        self.last_frame: dict[str, bytes] = {}  # host_if -> last IP packet its neighbour received
        self.ct_families: set[str] = set()
        self.legacy = bool(scenario.iptables_legacy.strip() or scenario.ip6tables_legacy.strip())
        self.link_index = {ln.host_if: i for i, ln in enumerate(scenario.links)}

    # -- build ---------------------------------------------------------------------------------
    def __enter__(self) -> Lab:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _build(self) -> None:
        sc = self.sc
        self.host = Netns(PREFIX)
        h = self.host
        script = ["set -e"]
        for i, ln in enumerate(sc.links):
            nb = Netns(PREFIX)
            self.neigh[ln.host_if] = nb
            mtu = f" mtu {ln.mtu}" if ln.mtu else ""
            nb.sh("echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; "
                  "echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6")
            script += [
                f"ip link add {ln.host_if} address {mac_of(i, 1)}{mtu} type veth peer name nb "
                f"address {mac_of(i, 2)} netns {nb.name}",
                f"ethtool -K {ln.host_if} rx off tx off tso off gso off gro off >/dev/null 2>&1 || true",
                f"ip -n {nb.name} link set nb up",
            ]
            for a in ln.host_addrs:
                fam = "-6 " if ":" in a else ""
                extra = " nodad" if ":" in a else ""
                script.append(f"ip {fam}addr add {a} dev {ln.host_if}{extra}")
            script.append(f"ip link set {ln.host_if} up")
            for p in ln.peers:
                script.append(f"ip neigh replace {p} lladdr {mac_of(i, 2)} dev {ln.host_if} nud permanent")
        h.sh("\n".join(script))
        if sc.setup.strip():
            h.sh(sc.setup)
        # legacy first: a table registered later runs first at equal priority (see pipeline.py)
        for tool, text in (("iptables-legacy-restore", sc.iptables_legacy),
                           ("ip6tables-legacy-restore", sc.ip6tables_legacy),
                           ("iptables-restore", sc.iptables), ("ip6tables-restore", sc.ip6tables),
                           ("nft -f -", sc.nft)):
            if text.strip():
                h.restore(tool, text)
        if _uses_conntrack(sc.iptables) or _uses_conntrack(sc.iptables_legacy):
            self.ct_families.add("ip")
        if _uses_conntrack(sc.ip6tables) or _uses_conntrack(sc.ip6tables_legacy):
            self.ct_families.add("ip6")
        if _uses_conntrack(sc.nft):
            for m in re.finditer(r"table\s+(inet|ip6|ip)\s", sc.nft):
                self.ct_families.update(("ip", "ip6") if m.group(1) == "inet" else (m.group(1),))
        self._wait_up()
        # sockets in the namespaces
        for ln in sc.links:
            self.nsock[ln.host_if] = in_netns(self.neigh[ln.host_if].name, _packet_socket("nb"))
        self.lo_sock = in_netns(h.name, _packet_socket("lo"))
        for lst in sc.listeners:
            self.listening.append(_Listening(lst, in_netns(h.name, _listen_socket(lst))))
        if any(lst.proto == "tcp" and lst.connect is not None for lst in sc.listeners):
            # the clients' connections (over lo) are the scenario's setup, not packet events
            time.sleep(0.05)
            for lsn in self.listening:
                if lsn.listener.proto == "tcp" and lsn.listener.connect is None:
                    with contextlib.suppress(BlockingIOError, OSError):
                        while True:
                            conn, _ = lsn.sock.accept()
                            conn.setblocking(False)
                            lsn.conns.append(conn)
        # the snapshot, before the trace table exists
        self._collect()
        self._rule_map()
        self._start_trace()

    def _wait_up(self) -> None:
        """Wait for LOWER_UP *and* operstate UP (link watch sets it a little later; the
        snapshot must not record the links DOWN)."""
        assert self.host is not None
        deadline = time.monotonic() + 5
        names = {ln.host_if for ln in self.sc.links}
        while time.monotonic() < deadline:
            out = self.host.exec(["ip", "-o", "link", "show"]).stdout
            up = {m.group(1) for m in re.finditer(
                r"^\d+: (\w+)@\S+: <[^>]*LOWER_UP[^>]*> .*\bstate UP\b", out, re.M)}
            if names <= up:
                return
            time.sleep(0.02)
        raise RuntimeError(f"links not up: {names}")

    def _collect(self) -> None:
        assert self.host is not None
        try:
            from journey.snapshot.collect import collect
        except ImportError as e:
            self.snapshot_error = f"journey.snapshot.collect unavailable: {e}"
            return
        try:
            self.snapshot = collect(netns=self.host.name)
        except Exception as e:  # reported by the test, not hidden
            self.snapshot_error = f"collect(netns=...) failed: {type(e).__name__}: {e}"

    def _rule_map(self) -> None:
        """(family, table, chain, handle) -> (chain position, 1-based) from ``nft -j -a``."""
        import json

        assert self.host is not None
        for fam, tool in (("ip", "iptables-save"), ("ip6", "ip6tables-save")):
            text = self.host.exec([tool], check=False).stdout
            # a native table of an iptables name prints as "# Table `nat' contains incompatible
            # base-chains" + an empty "*nat": it is not iptables-nft's
            native = set(re.findall(r"^# Table `(\w+)' (?:contains|is) incompatible", text, re.M))
            for m in re.finditer(r"^\*(\w+)", text, re.M):
                if m.group(1) not in native:
                    self.ipt_tables.add((fam, m.group(1)))
        out = self.host.exec(["nft", "-j", "-a", "list", "ruleset"]).stdout
        pos: dict[tuple[str, str, str], int] = {}
        for obj in json.loads(out).get("nftables", []):
            r = obj.get("rule")
            if not r:
                continue
            key = (r["family"], r["table"], r["chain"])
            pos[key] = pos.get(key, 0) + 1
            self.nft_rules[(r["family"], r["table"], r["chain"], int(r["handle"]))] = (
                "nft" if (r["family"], r["table"]) in self.ipt_tables else "native", pos[key])

    def _start_trace(self) -> None:
        """Add the trace tables, then start ``nft -a monitor`` (its cache then knows their rules,
        so trace lines print rule texts) and wait until it reports a marker table."""
        assert self.host is not None
        h = self.host
        hooks = [("pre_end", "prerouting"), ("in_end", "input"), ("fwd_end", "forward"),
                 ("out_end", "output"), ("post_end", "postrouting")]
        lines = [f"table inet {TRACE_TABLE} {{",
                 "  chain pre { type filter hook prerouting priority -350; meta nftrace set 1; }",
                 "  chain out { type filter hook output priority -350; meta nftrace set 1; }"]
        lines += [f"  chain {n} {{ type filter hook {hk} priority 10000; }}" for n, hk in hooks]
        lines.append("}")
        if re.search(r"hook\s+ingress", self.sc.nft):
            # ingress chains (netdev / inet) run before prerouting: trace from the device's
            # ingress hook (lowest priority) so that their rules show in the trace too
            lines.append(f"table netdev {TRACE_TABLE}_nd {{")
            for ln in self.sc.links:
                lines.append(f"  chain nd_{ln.host_if} {{ type filter hook ingress device "
                             f"\"{ln.host_if}\" priority -1000; meta nftrace set 1; }}")
            lines.append("}")
        for fam in sorted(self.ct_families):
            lines.append(f"table {fam} {TRACE_TABLE}_ct {{")
            for n, hk in (("ct_pre", "prerouting"), ("ct_out", "output")):
                lines.append(f"  chain {n} {{ type filter hook {hk} priority -199;")
                for st in ("new", "established", "related", "invalid", "untracked"):
                    lines.append(f"    ct state {st} counter")
                lines += ["    ct direction original counter", "    ct direction reply counter",
                          "  }"]
            lines.append("}")
        h.restore("nft -f -", "\n".join(lines) + "\n")
        self.monitor = subprocess.Popen(
            ["ip", "netns", "exec", h.name, "stdbuf", "-oL", "nft", "-a", "monitor"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        threading.Thread(target=self._read_trace, daemon=True, name="kd-trace").start()
        marker = f"{TRACE_TABLE}_ready"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            # the monitor may not be subscribed yet: re-create the marker until it is seen
            h.exec(["nft", "add", "table", "inet", marker])
            h.exec(["nft", "delete", "table", "inet", marker])
            until = time.monotonic() + 0.2
            while time.monotonic() < until:
                with self._trace_lock:
                    if any(ln.startswith("delete table") and marker in ln
                           for ln in self.trace_lines):
                        self.trace_lines.clear()
                        return
                time.sleep(0.005)
        raise RuntimeError("nft monitor did not report the marker table")

    def _read_trace(self) -> None:
        assert self.monitor is not None and self.monitor.stdout is not None
        for line in self.monitor.stdout:
            with self._trace_lock:
                self.trace_lines.append(line.rstrip("\n"))

    # -- teardown ------------------------------------------------------------------------------
    def close(self) -> None:
        if self.monitor is not None:
            with contextlib.suppress(Exception):
                self.monitor.terminate()
                self.monitor.wait(timeout=2)
            self.monitor = None
        for s in [*self.nsock.values(), *([self.lo_sock] if self.lo_sock else []), *self.keep]:
            with contextlib.suppress(OSError):
                s.close()
        for lst in self.listening:
            for c in [lst.sock, *lst.conns]:
                with contextlib.suppress(OSError):
                    c.close()
        for nb in self.neigh.values():
            nb.delete()
        if self.host is not None:
            self.host.delete()

    # -- state readers -------------------------------------------------------------------------
    def counters(self) -> dict[tuple[str, str, str, str, int], int]:
        """(backend, family, table, chain, index) -> packet count, for every iptables rule."""
        from tests.kernel.observe import parse_counters

        assert self.host is not None
        out: dict[tuple[str, str, str, str, int], int] = {}
        tools = [("nft", "ipv4", "iptables-save"), ("nft", "ipv6", "ip6tables-save")]
        if self.legacy:
            tools += [("legacy", "ipv4", "iptables-legacy-save"),
                      ("legacy", "ipv6", "ip6tables-legacy-save")]
        for backend, fam, tool in tools:
            text = self.host.exec([tool, "-c"], check=False).stdout
            out.update(parse_counters(text, backend, fam))
        return out

    def snmp(self) -> dict[str, int]:
        from tests.kernel.observe import parse_snmp

        assert self.host is not None

        def read() -> dict[str, int]:
            vals: dict[str, int] = {}
            for f in ("snmp", "netstat", "snmp6"):
                with open(f"/proc/thread-self/net/{f}") as fh:
                    vals.update(parse_snmp(fh.read(), six=(f == "snmp6")))
            return vals

        return in_netns(self.host.name, read)

    def conntrack(self) -> list[str]:
        assert self.host is not None
        if not self.ct_families:
            return []
        res = self.host.exec(["conntrack", "-L", "-o", "extended"], check=False)
        return [ln for ln in res.stdout.splitlines() if ln.strip()]

    # -- sending -------------------------------------------------------------------------------
    def run_packets(self) -> Iterator[RawObservation]:
        from journey.packets.spec import parse_spec

        counters = self.counters()
        snmp = self.snmp()
        for i, send in enumerate(self.sc.packets):
            pkt = parse_spec(send.spec)
            obs = RawObservation(index=i, send=send, packet=pkt, sent=None,
                                 counters_before=counters, snmp_before=snmp)
            self._drain(obs)  # stale frames / trace lines are not this packet's
            obs.frames.clear()
            with self._trace_lock:
                self.trace_lines.clear()
            local = None
            if pkt.local:
                local = self._send_local(pkt, send, obs)
            else:
                self._send_in(pkt, send, obs)
            self._settle(obs)
            if local is not None:
                with contextlib.suppress(OSError):
                    obs.sock_error = local.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) or None
                try:
                    local.getpeername()
                    self.keep.append(local)  # a live connection: closing it would send a FIN
                except OSError:
                    local.close()  # SYN_SENT / unconnected: closing sends nothing
            self._poll_listeners(obs)
            counters = self.counters()
            snmp = self.snmp()
            obs.counters_after = counters
            obs.snmp_after = snmp
            obs.conntrack = self.conntrack()
            yield obs

    def _flow_seq(self, pkt: Any, payload_len: int) -> tuple[int, int]:
        key = (str(pkt.src), pkt.sport or 40000, str(pkt.dst), pkt.dport or 0)
        rkey = (key[2], key[3], key[0], key[1])
        flags = pkt.tcp_flags or "S"
        if "S" in flags:
            seq = 1000 if "A" not in flags else 500000
        else:
            seq = self.next_seq.get(key, 77777)
        ack = self.next_seq.get(rkey, 0) if "A" in flags else 0
        self.next_seq[key] = (seq + payload_len + ("S" in flags) + ("F" in flags)) & 0xFFFFFFFF
        return seq, ack

    def _send_in(self, pkt: Any, send: Send, obs: RawObservation) -> None:
        iif = pkt.iif
        if iif not in self.nsock:
            raise RuntimeError(f"{send.spec!r}: no link {iif!r} in scenario {self.sc.name}")
        v6 = pkt.family.value == "ipv6"
        seq = ack = 0
        if int(pkt.proto) == 6:
            payload_len = len(send.payload or pkt.payload or b"")
            if pkt.length:
                payload_len = max(payload_len, pkt.length - (60 if v6 else 40))
            seq, ack = self._flow_seq(pkt, payload_len)
        quote = None
        if send.quote:
            last = self.last_frame.get(iif)
            if last is None:
                raise RuntimeError(f"{send.spec!r}: nothing to quote on {iif}")
            quote = _quote(last)
        ip = build_ip(pkt, seq=seq, ack=ack, ipid=100 + obs.index, quote=quote,
                      payload=send.payload)
        li = self.link_index[iif]
        frame = build_frame(ip, src_mac=pkt.src_mac or mac_of(li, 2),
                            dst_mac=pkt.dst_mac or mac_of(li, 1), v6=v6)
        obs.sent = frame
        self.nsock[iif].send(frame)

    def _send_local(self, pkt: Any, send: Send, obs: RawObservation) -> socket.socket:
        assert self.host is not None
        v6 = pkt.family.value == "ipv6"
        fam = socket.AF_INET6 if v6 else socket.AF_INET
        proto = int(pkt.proto)
        flags = pkt.tcp_flags or "S"
        payload = send.payload or pkt.payload or b""
        raw = proto not in (1, 6, 17, 58) or (proto == 6 and flags != "S") or pkt.frag_offset \
            or pkt.more_fragments
        if pkt.length and not raw:
            hdr = (40 if v6 else 20) + {6: 20, 17: 8, 1: 8, 58: 8}[proto]
            payload = payload + b"\x00" * max(0, pkt.length - hdr - len(payload))

        def make() -> socket.socket:
            if raw:
                if pkt.src is None:
                    raise RuntimeError(f"{send.spec!r}: a raw local packet needs a source")
                s = socket.socket(fam, socket.SOCK_RAW, socket.IPPROTO_RAW)
            elif proto == 6:
                s = socket.socket(fam, socket.SOCK_STREAM)
            elif proto == 17:
                s = socket.socket(fam, socket.SOCK_DGRAM)
            else:
                s = socket.socket(fam, socket.SOCK_RAW, proto)
            if pkt.mark:
                s.setsockopt(socket.SOL_SOCKET, SO_MARK, pkt.mark)
            if proto in (6, 17) and not raw:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if not raw:
                if v6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, pkt.ttl)
                    if pkt.tos:
                        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, pkt.tos)
                    s.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER,
                                 PMTUDISC_DO if pkt.df else PMTUDISC_DONT)
                else:
                    s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, pkt.ttl)
                    if pkt.tos:
                        s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, pkt.tos)
                    s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER,
                                 PMTUDISC_DO if pkt.df else PMTUDISC_DONT)
                if proto in (6, 17):
                    s.bind((str(pkt.src) if pkt.src is not None else "", pkt.sport or 40000))
                elif pkt.src is not None:
                    s.bind((str(pkt.src), 0))
            s.setblocking(False)
            return s

        s = in_netns(self.host.name, make, fsuid=pkt.uid)
        dst = (str(pkt.dst), pkt.dport or 0)
        try:
            if raw:
                seq, ack = self._flow_seq(pkt, len(payload)) if proto == 6 else (0, 0)
                data = build_ip(pkt, seq=seq, ack=ack, ipid=100 + obs.index, payload=payload)
                obs.notes.append("sent from an IPPROTO_RAW socket")
                obs.sent = data
                s.sendto(data, (str(pkt.dst), 0))
            elif proto == 6:
                obs.sent = b""
                rc = s.connect_ex(dst)
                if rc not in (0, errno_mod.EINPROGRESS):
                    obs.send_errno = rc
            elif proto == 17:
                obs.sent = payload
                s.sendto(payload, dst)
            else:
                if pkt.src is None:  # the kernel writes the IP header: any source will do
                    import dataclasses
                    import ipaddress

                    pkt = dataclasses.replace(
                        pkt, src=ipaddress.ip_address("::" if v6 else "0.0.0.0"))
                icmp = build_ip(pkt, ipid=100 + obs.index, payload=payload)
                body = icmp[40:] if v6 else icmp[(icmp[0] & 0xF) * 4:]
                obs.sent = body
                s.sendto(body, (str(pkt.dst), 0))
        except OSError as e:
            obs.send_errno = e.errno
        return s

    # -- observing -----------------------------------------------------------------------------
    def _drain(self, obs: RawObservation) -> int:
        from tests.kernel.observe import parse_frame

        n = 0
        socks = [(ifn, s) for ifn, s in self.nsock.items()]
        if self.lo_sock is not None:
            socks.append(("lo", self.lo_sock))
        for ifn, s in socks:
            while True:
                try:
                    data, addr = s.recvfrom(65535)
                except BlockingIOError:
                    break
                if ifn == "lo":
                    if addr[2] != PACKET_OUTGOING:
                        continue
                elif addr[2] == PACKET_OUTGOING:
                    continue
                n += 1
                obs.frames.append(Frame(ifn, data, time.monotonic()))
                h = parse_frame(data)
                if h is None:
                    continue
                if ifn != "lo" and not h.noise:
                    self.last_frame[ifn] = h.ip
                if h.proto == 6 and h.sport is not None and h.dport is not None:
                    key = (h.src, h.sport, h.dst, h.dport)
                    nxt = h.seq + h.payload_len + ("S" in h.flags) + ("F" in h.flags)
                    self.next_seq[key] = nxt & 0xFFFFFFFF
        return n

    def _settle(self, obs: RawObservation, *, quiet: float = 0.04, minimum: float = 0.06,
                maximum: float = 0.8) -> None:
        start = time.monotonic()
        last = start
        seen = 0
        socks = [*self.nsock.values(), *([self.lo_sock] if self.lo_sock else [])]
        while True:
            now = time.monotonic()
            if now - start >= maximum:
                break
            if now - start >= minimum and now - last >= quiet:
                break
            select.select(socks, [], [], 0.01)
            got = self._drain(obs)
            with self._trace_lock:
                n = len(self.trace_lines)
            if got or n != seen:
                last = time.monotonic()
                seen = n
        with self._trace_lock:
            obs.trace = list(self.trace_lines)
            self.trace_lines.clear()

    def _poll_listeners(self, obs: RawObservation) -> None:
        for lst in self.listening:
            if lst.listener.proto == "udp":
                while True:
                    try:
                        data, peer = lst.sock.recvfrom(65535)
                    except (BlockingIOError, OSError):
                        break
                    obs.listener_events.append(ListenerEvent(
                        lst.listener, "datagram", (peer[0], peer[1]), lst.sock.getsockname()[:2],
                        len(data)))
            else:
                while True:
                    try:
                        conn, peer = lst.sock.accept()
                    except (BlockingIOError, OSError):
                        break
                    conn.setblocking(False)
                    lst.conns.append(conn)
                    obs.listener_events.append(ListenerEvent(
                        lst.listener, "accept", (peer[0], peer[1]), conn.getsockname()[:2], 0))
                for conn in lst.conns:
                    try:
                        data = conn.recv(65535)
                    except (BlockingIOError, OSError):
                        continue
                    if data:
                        obs.listener_events.append(ListenerEvent(
                            lst.listener, "data", conn.getpeername()[:2], conn.getsockname()[:2],
                            len(data)))


def _quote(ip: bytes) -> bytes:
    """What an ICMP error quotes: the IP header and the first 8 bytes of its payload (v4), or
    as much of the packet as fits in the minimum MTU (v6)."""
    if ip[0] >> 4 == 6:
        return ip[:1232]
    ihl = (ip[0] & 0xF) * 4
    return ip[: ihl + 8]


def _packet_socket(ifname: str) -> Callable[[], socket.socket]:
    def make() -> socket.socket:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.bind((ifname, ETH_P_ALL))
        s.setblocking(False)
        return s

    return make


def _listen_socket(lst: Listener) -> Callable[[], socket.socket]:
    def make() -> socket.socket:
        fam = socket.AF_INET6 if ":" in lst.addr else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM if lst.proto == "tcp" else socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if lst.reuseport:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(lst.v6only))
        if lst.device:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, lst.device.encode())
        s.bind((lst.addr, lst.port))
        if lst.connect is not None:
            s.settimeout(2)
            s.connect(lst.connect)
        elif lst.proto == "tcp":
            s.listen(16)
        s.setblocking(False)
        return s

    return make


def run_scenario(sc: Scenario) -> tuple[Lab, list[RawObservation]]:
    """Build, send everything, return the lab (already closed) and the raw observations."""
    with Lab(sc) as lab:
        obs = list(lab.run_packets())
    return lab, obs


__all__ = [
    "Expect",
    "Frame",
    "K",
    "Lab",
    "Link",
    "Listener",
    "RawObservation",
    "Scenario",
    "Send",
    "in_netns",
    "run",
    "run_scenario",
]
