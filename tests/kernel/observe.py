"""Turn what the kernel did with one packet into the engine's vocabulary, and compare.

Inputs are the raw records of ``tests.kernel.harness`` (frames seen by the neighbours and on
``lo``, ``nft monitor trace`` lines, iptables counters, SNMP counters, conntrack, listener
events, the errno of a local send). ``interpret`` decides, for the packet itself (never the
replies the kernel generated for it):

- disposition: ``forwarded``/``sent`` when a copy left on a link, ``delivered`` when it passed
  the INPUT hook and a socket took it (listener record, SYN-ACK, echo reply), ``rejected`` when
  a REJECT rule or the socket layer refused it with an answer (RST, ICMP port unreachable...),
  else ``dropped`` -- also when routing or forwarding refused it with an ICMP error (no route,
  unreachable/prohibit route, TTL, MTU), as docs/trace-json.md defines the words; that error
  is still compared, in ``replies``;
- egress: the host interface whose neighbour received the copy;
- final headers: from the wire (forwarded/sent) or from the trace at the end of INPUT
  (delivered); the mark from the trace (invisible on the wire);
- rules hit, in order: trace rule events of the packet's own trace ids (iptables-nft rules are
  mapped to table/chain/1-based index through ``nft -a`` handles); legacy rules from
  ``iptables-legacy-save -c`` deltas (these cannot be told apart from the replies' hits);
- replies: kernel-generated packets addressed back to the sender;
- conntrack state and direction as the packet saw them (trace of ``ct state`` rules).

``compare(observed, journey)`` returns the mismatches field by field. Nothing here changes the
engine; nothing is relaxed to make it agree.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.kernel.harness import Expect, Lab, RawObservation

# ---------------------------------------------------------------------------------------------
# parsers
# ---------------------------------------------------------------------------------------------

_COUNTER_LINE = re.compile(r"^\[(\d+):(\d+)\] -A (\S+)")


def parse_counters(text: str, backend: str, family: str) -> dict[tuple[str, str, str, str, int], int]:
    """``iptables-save -c`` -> {(backend, family, table, chain, index): packets}."""
    out: dict[tuple[str, str, str, str, int], int] = {}
    table = ""
    pos: Counter[str] = Counter()
    native = set(re.findall(r"^# Table `(\w+)' (?:contains|is) incompatible", text, re.M))
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
            pos = Counter()
            continue
        m = _COUNTER_LINE.match(line)
        if m and table not in native:  # a native table's regular chains: traced, not counted
            chain = m.group(3)
            pos[chain] += 1
            out[(backend, family, table, chain, pos[chain])] = int(m.group(1))
    return out


def parse_snmp(text: str, *, six: bool = False) -> dict[str, int]:
    """/proc/net/snmp and netstat (header/value line pairs) or snmp6 (name value lines)."""
    out: dict[str, int] = {}
    lines = text.splitlines()
    if six:
        for ln in lines:
            parts = ln.split()
            if len(parts) == 2 and parts[1].lstrip("-").isdigit():
                out[parts[0]] = int(parts[1])
        return out
    for head, vals in zip(lines[0::2], lines[1::2], strict=False):
        hp, vp = head.split(), vals.split()
        if not hp or hp[0] != vp[0]:
            continue
        pre = hp[0].rstrip(":")
        for k, v in zip(hp[1:], vp[1:], strict=False):
            if v.lstrip("-").isdigit():
                out[f"{pre}.{k}"] = int(v)
    return out


TCP_LETTERS = "FSRPAUEC"


def flag_letters(bits: int) -> str:
    """TCP flag bits -> letters in spec order (S before A: "SA", "PA", "FA", "R", "RA")."""
    order = "SFRPAUEC"
    val = {c: 1 << TCP_LETTERS.index(c) for c in TCP_LETTERS}
    return "".join(c for c in order if bits & val[c])


def flag_bits(letters: str) -> int:
    return sum(1 << TCP_LETTERS.index(c) for c in set(letters) if c in TCP_LETTERS)


@dataclass(frozen=True)
class Hdr:
    """Headers of one captured frame."""

    family: str  # ipv4 | ipv6
    src: str
    dst: str
    proto: int
    ttl: int
    tos: int
    sport: int | None = None
    dport: int | None = None
    flags: str = ""
    seq: int = 0
    ack: int = 0
    icmp_type: int | None = None
    icmp_code: int | None = None
    icmp_id: int | None = None
    payload_len: int = 0
    ip: bytes = b""
    frag: bool = False
    noise: bool = False

    def kind(self) -> str:
        """Reply-style description: tcp-rst, syn-ack, tcp SA, icmp 3/3, udp."""
        if self.proto == 6:
            if "R" in self.flags:
                return "tcp-rst"
            if "S" in self.flags and "A" in self.flags:
                return "syn-ack"
            return f"tcp {self.flags}"
        if self.proto in (1, 58):
            return f"{'icmp' if self.proto == 1 else 'icmpv6'} {self.icmp_type}/{self.icmp_code}"
        if self.proto == 17:
            return "udp"
        return f"proto {self.proto}"


def parse_frame(data: bytes) -> Hdr | None:
    """An Ethernet frame (or loopback frame) -> ``Hdr``; None when it is not IP."""
    if len(data) < 14:
        return None
    et = struct.unpack_from("!H", data, 12)[0]
    off = 14
    if et == 0x8100:
        et = struct.unpack_from("!H", data, 16)[0]
        off = 18
    if et == 0x0806:
        return Hdr("arp", "", "", 0, 0, 0, noise=True)
    if et == 0x0800:
        b = data[off:]
        ihl = (b[0] & 0xF) * 4
        total = struct.unpack_from("!H", b, 2)[0]
        b = b[:total]
        proto, ttl, tos = b[9], b[8], b[1]
        fragword = struct.unpack_from("!H", b, 6)[0]
        frag = bool(fragword & 0x1FFF)
        src = socket.inet_ntop(socket.AF_INET, b[12:16])
        dst = socket.inet_ntop(socket.AF_INET, b[16:20])
        return _l4("ipv4", src, dst, proto, ttl, tos, b, ihl, frag)
    if et == 0x86DD:
        b = data[off:]
        plen = struct.unpack_from("!H", b, 4)[0]
        b = b[: 40 + plen]
        tos = ((b[0] & 0x0F) << 4) | (b[1] >> 4)
        nh, ttl = b[6], b[7]
        src = socket.inet_ntop(socket.AF_INET6, b[8:24])
        dst = socket.inet_ntop(socket.AF_INET6, b[24:40])
        pos = 40
        frag = False
        while nh in (0, 43, 44, 60) and pos + 8 <= len(b):
            if nh == 44:
                frag = bool(struct.unpack_from("!H", b, pos + 2)[0] & 0xFFF8)
                nh, pos = b[pos], pos + 8
            else:
                nh, pos = b[pos], pos + (b[pos + 1] + 1) * 8
        return _l4("ipv6", src, dst, nh, ttl, tos, b, pos, frag)
    return None


def _l4(family: str, src: str, dst: str, proto: int, ttl: int, tos: int, b: bytes, off: int,
        frag: bool) -> Hdr:
    l4 = b[off:]
    if frag:
        return Hdr(family, src, dst, proto, ttl, tos, ip=bytes(b), frag=True)
    if proto == 6 and len(l4) >= 20:
        sport, dport, seq, ack, offflags = struct.unpack_from("!HHIIH", l4)
        doff = (offflags >> 12) * 4
        return Hdr(family, src, dst, proto, ttl, tos, sport, dport, flag_letters(offflags & 0xFF),
                   seq, ack, payload_len=max(0, len(l4) - doff), ip=bytes(b))
    if proto == 17 and len(l4) >= 8:
        sport, dport = struct.unpack_from("!HH", l4)
        return Hdr(family, src, dst, proto, ttl, tos, sport, dport, payload_len=len(l4) - 8,
                   ip=bytes(b))
    if proto in (1, 58) and len(l4) >= 4:
        t, c = l4[0], l4[1]
        ident = struct.unpack_from("!H", l4, 4)[0] if len(l4) >= 6 and t in (0, 8, 128, 129) else None
        noise = proto == 58 and 130 <= t <= 143 and t != 137
        return Hdr(family, src, dst, proto, ttl, tos, icmp_type=t, icmp_code=c, icmp_id=ident,
                   ip=bytes(b), noise=noise)
    return Hdr(family, src, dst, proto, ttl, tos, ip=bytes(b), noise=(proto == 2))


# -- nft trace --------------------------------------------------------------------------------

_TRACE = re.compile(r"^trace id (\S+) (\S+) (\S+) (\S+) (packet:|rule|policy|return|verdict|unknown)\s?(.*)$")
_HANDLE = re.compile(r"# handle (\d+)")
_VERDICT = re.compile(r"\(verdict (\w+)(?: (\S+))?\)\s*$")
_DSCP = {f"cs{i}": i * 8 for i in range(8)} | {"ef": 46, "va": 44}
_DSCP |= {f"af{a}{b}": a * 8 + b * 2 for a in range(1, 5) for b in range(1, 4)}
_ECN = {"not-ect": 0, "ect1": 1, "ect0": 2, "ce": 3}
ICMP_NAMES = {
    "echo-reply": 0, "destination-unreachable": 3, "source-quench": 4, "redirect": 5,
    "echo-request": 8, "time-exceeded": 11, "parameter-problem": 12,
}
ICMP6_NAMES = {
    "destination-unreachable": 1, "packet-too-big": 2, "time-exceeded": 3, "parameter-problem": 4,
    "echo-request": 128, "echo-reply": 129, "mld-listener-query": 130, "mld-listener-report": 131,
    "mld-listener-done": 132, "mld-listener-reduction": 132, "nd-router-solicit": 133,
    "nd-router-advert": 134, "nd-neighbor-solicit": 135, "nd-neighbor-advert": 136,
    "nd-redirect": 137, "mld2-listener-report": 143,
}
TCP_NAMES = {"fin": "F", "syn": "S", "rst": "R", "psh": "P", "ack": "A", "urg": "U", "ecn": "E",
             "cwr": "C"}


@dataclass(frozen=True)
class TraceEvent:
    id: str
    family: str
    table: str
    chain: str
    kind: str  # packet | rule | policy | return | verdict | unknown
    text: str
    handle: int | None = None
    verdict: str | None = None
    fields: dict[str, str] = field(default_factory=dict)


def _packet_fields(text: str) -> dict[str, str]:
    """``iif "h0" ip saddr 1.2.3.4 ... tcp flags == syn | ack`` -> flat dict of header fields."""
    toks = text.split()
    out: dict[str, str] = {}
    i = 0
    while i < len(toks):
        t = toks[i]
        if t in ("iif", "oif") and i + 1 < len(toks):
            out[t] = toks[i + 1].strip('"')
            i += 2
            continue
        if t.startswith("@th,0,") and i + 1 < len(toks):  # raw network header bytes
            out["@th"] = toks[i + 1]
            i += 2
            continue
        if t in ("ip", "ip6", "tcp", "udp", "icmp", "icmpv6", "meta", "ether") and i + 2 < len(toks):
            key = f"{t} {toks[i + 1]}"
            if key == "tcp flags":
                j = i + 2
                if toks[j] == "==":
                    j += 1
                vals = []
                while j < len(toks):
                    vals.append(toks[j])
                    if j + 1 < len(toks) and toks[j + 1] == "|":
                        j += 2
                        continue
                    j += 1
                    break
                out[key] = "|".join(vals)
                i = j
                continue
            out[key] = toks[i + 2]
            i += 3
            continue
        i += 1
    return out


def parse_trace(lines: list[str]) -> list[TraceEvent]:
    out: list[TraceEvent] = []
    for ln in lines:
        m = _TRACE.match(ln.strip())
        if not m:
            continue
        tid, fam, table, chain, kind, rest = m.groups()
        kind = kind.rstrip(":")
        handle = verdict = None
        fields: dict[str, str] = {}
        if kind == "rule":
            h = _HANDLE.search(rest)
            handle = int(h.group(1)) if h else None
            v = _VERDICT.search(rest)
            verdict = v.group(1) if v else None
        elif kind == "policy":
            verdict = rest.split()[0] if rest else None
            fields = _packet_fields(rest)
        elif kind == "packet":
            fields = _packet_fields(rest)
        out.append(TraceEvent(tid, fam, table, chain, kind, rest, handle, verdict, fields))
    return out


@dataclass(frozen=True)
class THdr:
    """Headers of a trace ``packet:`` line."""

    proto: int | None
    src: str | None
    dst: str | None
    sport: int | None
    dport: int | None
    ttl: int | None
    tos: int | None
    flags: str
    icmp_type: int | None
    icmp_code: int | None
    mark: int | None
    noise: bool
    frag: bool = False  # an IPv6 fragment (the trace shows no transport header)
    src_prefix: bytes | None = None  # leading source bytes, when only raw header bytes show


_IP6_FRAG_NAMES = ("ipv6-frag", "44")


def _raw_ip6(f: dict[str, str]) -> THdr | None:
    """nft trace prints a non-first IPv6 fragment as raw bytes (``@th,0,160 0x60...``): the
    first 20 bytes of the IPv6 header (next header, hop limit, 12 bytes of the source)."""
    raw = f.get("@th", "")
    if f.get("ether type") != "ip6" or not raw.startswith("0x"):
        return None
    try:
        b = bytes.fromhex(raw[2:])
    except ValueError:
        return None
    if len(b) < 20 or b[0] >> 4 != 6:
        return None
    frag = b[6] == 44
    return THdr(None, None, None, None, None, b[7], None, "", None, None, None, False,
                frag=frag, src_prefix=b[8:20])


def thdr(f: dict[str, str]) -> THdr:
    if "ip6 saddr" not in f and "ip saddr" not in f:
        raw = _raw_ip6(f)
        if raw is not None:
            return raw
    fam = "ip6" if "ip6 saddr" in f else "ip"
    proto: int | None = None
    for name, num in (("tcp", 6), ("udp", 17), ("icmp", 1), ("icmpv6", 58)):
        if any(k.startswith(name + " ") for k in f):
            proto = num
    if proto is None:
        p = f.get("ip protocol") or f.get("ip6 nexthdr") or f.get("meta l4proto")
        proto = {"tcp": 6, "udp": 17, "icmp": 1, "ipv6-icmp": 58}.get(p or "")
        if proto is None and p and p.isdigit():
            proto = int(p)
    sport = f.get(f"{'tcp' if proto == 6 else 'udp'} sport")
    dport = f.get(f"{'tcp' if proto == 6 else 'udp'} dport")
    ttl = f.get("ip ttl") or f.get("ip6 hoplimit")
    dscp = f.get(f"{fam} dscp")
    ecn = f.get(f"{fam} ecn")
    tos = None
    if dscp is not None:
        d = _DSCP.get(dscp)
        if d is None:
            d = int(dscp, 0) if dscp[:1].isdigit() else 0
        tos = (d << 2) | _ECN.get(ecn or "not-ect", 0)
    flags = ""
    if "tcp flags" in f:
        v = f["tcp flags"]
        if v.startswith("0x"):
            flags = flag_letters(int(v, 16))
        else:
            flags = flag_letters(flag_bits("".join(TCP_NAMES.get(x, "") for x in v.split("|"))))
    it = ic = None
    key = "icmpv6" if proto == 58 else "icmp"
    names = ICMP6_NAMES if proto == 58 else ICMP_NAMES
    if f.get(f"{key} type"):
        tv = f[f"{key} type"]
        it = names.get(tv, int(tv) if tv.isdigit() else None)
    if f.get(f"{key} code"):
        cv = f[f"{key} code"]
        ic = int(cv) if cv.isdigit() else None
    mark = int(f["meta mark"], 16) if f.get("meta mark") else None
    noise = (proto == 58 and it is not None and 130 <= it <= 143 and it != 137) or proto == 2
    frag = fam == "ip6" and f.get("ip6 nexthdr") in _IP6_FRAG_NAMES
    return THdr(proto, f.get(f"{fam} saddr"), f.get(f"{fam} daddr"),
                int(sport) if sport else None, int(dport) if dport else None,
                int(ttl) if ttl else None, tos, flags, it, ic, mark, noise, frag=frag)


# ---------------------------------------------------------------------------------------------
# interpretation
# ---------------------------------------------------------------------------------------------

ERROR_REPLIES_V4 = {3, 4, 5, 11, 12}
ERROR_REPLIES_V6 = {1, 2, 3, 4, 137}


@dataclass
class Observed:
    """The kernel's verdict for one packet, in the engine's vocabulary."""

    spec: str
    disposition: str
    reason: str = ""
    egress: str | None = None
    final: dict[str, str] = field(default_factory=dict)
    replies: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)  # own hits, in order (legacy last)
    rules_ordered: bool = True  # False when legacy rules are involved (order unknown)
    reply_rules: list[str] = field(default_factory=list)
    ct: str | None = None
    ct_direction: str | None = None
    socket: str | None = None
    conntrack: list[str] = field(default_factory=list)
    snmp: dict[str, int] = field(default_factory=dict)
    trace: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)  # harness self-check problems
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [self.disposition]
        if self.reason:
            parts.append(f"({self.reason})")
        if self.egress:
            parts.append(f"egress={self.egress}")
        if self.replies:
            parts.append("replies=" + ",".join(self.replies))
        if self.rules:
            parts.append("rules=" + " ".join(self.rules))
        if self.ct:
            parts.append(f"ct={self.ct}")
        if self.final:
            parts.append("final=" + " ".join(f"{k}={v}" for k, v in self.final.items()))
        return " ".join(parts)


def _same_kind(h: Hdr | THdr, pkt: Any) -> bool:
    proto = int(pkt.proto)
    if isinstance(h, THdr) and h.frag:  # the trace of an IPv6 fragment shows no transport
        return bool(pkt.frag_offset or pkt.more_fragments)
    if h.proto != proto:
        return False
    if proto == 6:
        return flag_bits(h.flags) == flag_bits(pkt.tcp_flags or "S")
    if proto in (1, 58):
        default = 8 if proto == 1 else 128
        return h.icmp_type == (default if pkt.icmp_type is None else pkt.icmp_type)
    return True


def _related(h: Hdr | THdr, pkt: Any) -> bool:
    """Does a header set plausibly belong to the packet (before or after NAT)?"""
    if isinstance(h, THdr) and h.src_prefix is not None:
        return pkt.src is not None and pkt.src.packed.startswith(h.src_prefix)
    return (
        (pkt.src is not None and h.src == str(pkt.src))
        or h.dst == str(pkt.dst)
        or (pkt.sport is not None and h.sport == pkt.sport)
        or (pkt.dport is not None and h.dport == pkt.dport)
    )


def _answers(h: Hdr, pkt: Any) -> bool:
    """Is this frame addressed back to the packet's sender (a reply to it)?"""
    if pkt.src is not None and h.dst != str(pkt.src):
        return False
    if h.proto in (6, 17) and pkt.sport is not None and h.dport != pkt.sport:
        return False
    return pkt.src is not None or h.src == str(pkt.dst)


def _positive_answer(h: THdr, pkt: Any) -> bool:
    """A traced SYN-ACK or echo reply addressed back to the packet's sender: the socket layer
    or the ICMP handler took the packet (even when a rule then drops the answer)."""
    if pkt.src is None or h.dst != str(pkt.src):
        return False
    if h.proto == 6:
        return flag_bits(h.flags) == flag_bits("SA") and h.dport == pkt.sport
    return h.proto in (1, 58) and h.icmp_type in (0, 129)


def _is_error(h: Hdr | THdr) -> bool:
    if h.proto == 1:
        return h.icmp_type in ERROR_REPLIES_V4
    if h.proto == 58:
        return h.icmp_type in ERROR_REPLIES_V6
    return False


def _ref(backend: str, table: str, chain: str, index: int) -> str:
    base = f"{table}/{chain}#{index}"
    return base if backend == "nft" else f"{backend}:{base}"


def interpret(raw: RawObservation, lab: Lab) -> Observed:
    pkt = raw.packet
    spec = raw.send.spec
    local = bool(pkt.local)
    obs = Observed(spec=spec, disposition="dropped")
    # -- frames --------------------------------------------------------------------------------
    own_wire: list[tuple[str, Hdr]] = []
    own_lo: list[Hdr] = []
    replies: list[tuple[str, Hdr]] = []
    for fr in raw.frames:
        h = parse_frame(fr.data)
        if h is None or h.noise:
            continue
        if fr.link == "lo":
            if _same_kind(h, pkt) and _related(h, pkt):
                own_lo.append(h)
            elif local and (_is_error(h) or h.kind() in ("tcp-rst", "syn-ack")
                            or h.icmp_type in (0, 129)) and _answers(h, pkt):
                replies.append((fr.link, h))
            continue
        if not local and pkt.src is not None and h.dst == str(pkt.src) and not _same_kind(h, pkt):
            if h.proto in (6, 17) and h.dport != pkt.sport:
                # e.g. a SYN-ACK retransmitted for an earlier packet of the scenario
                obs.notes.append(f"frame for another flow on {fr.link}: {h.kind()} "
                                 f"{h.src}:{h.sport}->{h.dst}:{h.dport}")
                continue
            replies.append((fr.link, h))
        elif _same_kind(h, pkt) and _related(h, pkt):
            own_wire.append((fr.link, h))
        else:
            obs.notes.append(f"unclassified frame on {fr.link}: {h.kind()} {h.src}->{h.dst}")
    # own ICMP echo replies / SYN-ACKs addressed to a local sender come back through lo
    obs.replies = sorted(h.kind() for _, h in replies)
    # -- trace ---------------------------------------------------------------------------------
    events = parse_trace(raw.trace)
    by_id: dict[str, list[TraceEvent]] = {}
    for ev in events:
        by_id.setdefault(ev.id, []).append(ev)
    own_ids: set[str] = set()
    answered = False
    for tid, evs in by_id.items():
        pkts = [e for e in evs if e.kind == "packet"]
        # an ingress (netdev) event may print the packet as raw payload (@ll/@nh on lo):
        # identify the packet by its first event with parsed IP headers
        first = next((e for e in pkts if "ip saddr" in e.fields or "ip6 saddr" in e.fields),
                     pkts[0] if pkts else None)
        if first is None:
            continue
        th = thdr(first.fields)
        if th.noise:
            continue
        if _same_kind(th, pkt) and _related(th, pkt):
            own_ids.add(tid)
        elif _positive_answer(th, pkt):
            answered = True  # a SYN-ACK / echo reply left the socket layer (maybe dropped later)
    own_events = [e for e in events if e.id in own_ids]
    obs.trace = [f"{e.id} {e.family} {e.table} {e.chain} {e.kind} {e.text}" for e in own_events]
    hits: list[str] = []
    other_hits: list[str] = []
    trace_count: Counter[tuple[str, str, str, str, int]] = Counter()
    nf_drop: str | None = None
    reached: set[str] = set()
    last_pkt: dict[str, THdr] = {}
    marks: dict[str, int] = {}
    for e in events:
        own = e.id in own_ids
        if e.table.startswith("kd_trace"):
            if not own:
                continue
            if e.kind == "packet":
                last_pkt[e.chain] = thdr(e.fields)
            if e.kind in ("packet", "policy"):
                reached.add(e.chain)
                if "meta mark" in e.fields:
                    marks[e.chain] = int(e.fields["meta mark"], 16)
                else:
                    marks.setdefault(e.chain, 0)
            if e.kind == "rule" and e.chain in ("ct_pre", "ct_out"):
                m = re.match(r"ct (state|direction) (\w+)", e.text)
                if m and m.group(1) == "state" and obs.ct is None:
                    obs.ct = m.group(2).upper()
                elif m and m.group(1) == "direction" and obs.ct_direction is None:
                    obs.ct_direction = m.group(2)
            continue
        if e.kind == "rule" and e.handle is not None:
            ref = lab.nft_rules.get((e.family, e.table, e.chain, e.handle))
            if ref is None:
                obs.checks.append(f"trace rule without a known handle: {e.family} {e.table} "
                                  f"{e.chain} {e.handle}")
                continue
            backend, index = ref
            text = _ref(backend, e.table, e.chain, index)
            fam = "ipv6" if e.family == "ip6" else "ipv4"
            if backend == "nft":
                trace_count[("nft", fam, e.table, e.chain, index)] += 1
            (hits if own else other_hits).append(text)
            if own and e.verdict == "drop" and nf_drop is None:
                nf_drop = f"{e.table}/{e.chain}#{index}"
        if own and e.kind == "policy" and e.verdict == "drop" and nf_drop is None:
            nf_drop = f"{e.table}/{e.chain} policy"
    # legacy rules: counter deltas (own and replies together)
    legacy_hits: list[str] = []
    for key, after in raw.counters_after.items():
        delta = after - raw.counters_before.get(key, 0)
        backend, fam, table, chain, index = key
        if delta <= 0:
            continue
        if backend == "legacy":
            legacy_hits += [_ref("legacy", table, chain, index)] * delta
        elif trace_count.get(key, 0) != delta:
            obs.checks.append(f"counter delta {delta} != trace hits {trace_count.get(key, 0)} "
                              f"for {fam} {table}/{chain}#{index}")
    if legacy_hits:
        obs.rules_ordered = False
    obs.rules = hits + legacy_hits
    obs.reply_rules = other_hits
    # -- snmp ----------------------------------------------------------------------------------
    obs.snmp = {k: v - raw.snmp_before.get(k, 0) for k, v in raw.snmp_after.items()
                if v != raw.snmp_before.get(k, 0)}
    # -- disposition ---------------------------------------------------------------------------
    errors = [h for _, h in replies if _is_error(h) or h.kind() == "tcp-rst"]
    positive = [h for _, h in replies if h.kind() == "syn-ack" or h.icmp_type in (0, 129)]
    delivered_evidence = list(raw.listener_events)
    if own_wire:
        obs.disposition = "sent" if local else "forwarded"
        links = sorted({ln for ln, _ in own_wire})
        obs.egress = ",".join(links)
        h = own_wire[0][1]
        obs.final = _final_from_hdr(h)
        if "post_end" in marks:
            obs.final["mark"] = hex(marks["post_end"])
    elif "in_end" in reached and (delivered_evidence or positive or answered) and not errors:
        obs.disposition = "delivered"
        at_input = last_pkt.get("in_end")
        if at_input is not None:
            obs.final = _final_from_thdr(at_input)
        obs.final["mark"] = hex(marks.get("in_end", 0))
        if delivered_evidence:
            obs.socket = delivered_evidence[0].listener.text()
    elif errors and (nf_drop or "in_end" in reached):
        # refused with an answer by a REJECT rule, or by the socket layer (no socket)
        obs.disposition = "rejected"
        obs.reason = ("netfilter " + nf_drop) if nf_drop else "no-socket"
    else:
        # includes routing / forwarding errors (no route, unreachable / prohibit routes, TTL,
        # MTU): the engine's vocabulary (docs/trace-json.md) calls them dropped, with the ICMP
        # error the kernel sent in ``replies``
        obs.disposition = "dropped"
        if nf_drop:
            obs.reason = "netfilter " + nf_drop
        elif "in_end" in reached:
            obs.reason = "dropped after INPUT"
    if not obs.reason:
        obs.reason = _snmp_reason(obs.snmp, raw)
    if raw.send_errno:
        import errno as errno_mod

        obs.notes.append(f"send errno {errno_mod.errorcode.get(raw.send_errno, raw.send_errno)}")
    if raw.sock_error:
        import errno as errno_mod

        obs.notes.append(f"socket error {errno_mod.errorcode.get(raw.sock_error, raw.sock_error)}")
    obs.conntrack = [ln for ln in raw.conntrack if _ct_related(ln, pkt)]
    if own_lo:
        obs.notes.append(f"own packet looped through lo {len(own_lo)}x")
    return obs


def _ct_related(line: str, pkt: Any) -> bool:
    return (pkt.src is not None and f"={pkt.src} " in line) or f"={pkt.dst} " in line


def _snmp_reason(d: dict[str, int], raw: RawObservation) -> str:
    table = [
        ("TcpExt.IPReversePathFilter", "rp-filter"),
        ("Ip.InAddrErrors", "martian/addr-error"),
        ("Ip.InHdrErrors", "header-error"),
        ("Ip.InNoRoutes", "no-route"),
        ("Ip.OutNoRoutes", "no-route"),
        ("Ip6InNoRoutes", "no-route"),
        ("Ip6OutNoRoutes", "no-route"),
        ("Ip6InAddrErrors", "addr-error"),
        ("Ip.FragFails", "frag-needed"),
        ("Ip6FragFails", "frag-needed"),
        ("Ip6InTooBigErrors", "frag-needed"),
        ("Udp.NoPorts", "no-socket"),
        ("Udp6NoPorts", "no-socket"),
        ("Ip.InUnknownProtos", "unknown-proto"),
        ("Ip.InDiscards", "discard"),
        ("Ip6InDiscards", "discard"),
    ]
    for key, word in table:
        if d.get(key, 0) > 0:
            return word
    if d.get("Icmp.OutTimeExcds", 0) > 0 or d.get("Icmp6OutTimeExcds", 0) > 0:
        return "ttl-exceeded"
    if raw.send_errno:
        import errno as errno_mod

        return "errno " + errno_mod.errorcode.get(raw.send_errno, str(raw.send_errno))
    return ""


def _final_from_hdr(h: Hdr) -> dict[str, str]:
    out = {"src": h.src, "dst": h.dst, "ttl": str(h.ttl), "tos": hex(h.tos)}
    if h.sport is not None:
        out["sport"] = str(h.sport)
    if h.dport is not None:
        out["dport"] = str(h.dport)
    return out


def _final_from_thdr(h: THdr) -> dict[str, str]:
    out: dict[str, str] = {}
    if h.src:
        out["src"] = h.src
    if h.dst:
        out["dst"] = h.dst
    if h.sport is not None:
        out["sport"] = str(h.sport)
    if h.dport is not None:
        out["dport"] = str(h.dport)
    if h.ttl is not None:
        out["ttl"] = str(h.ttl)
    if h.tos is not None:
        out["tos"] = hex(h.tos)
    return out


def check_expect(obs: Observed, exp: Expect) -> list[str]:
    """Differences between the observation and the scenario's expected kernel behaviour."""
    bad: list[str] = []
    if exp.disposition is not None and obs.disposition != exp.disposition:
        bad.append(f"disposition: expected {exp.disposition}, kernel {obs.disposition}")
    if exp.egress is not None and obs.egress != exp.egress:
        bad.append(f"egress: expected {exp.egress}, kernel {obs.egress}")
    if exp.replies is not None and sorted(exp.replies) != sorted(obs.replies):
        bad.append(f"replies: expected {sorted(exp.replies)}, kernel {obs.replies}")
    if exp.rules is not None and Counter(exp.rules) != Counter(obs.rules):
        bad.append(f"rules: expected {list(exp.rules)}, kernel {obs.rules}")
    elif exp.rules is not None and obs.rules_ordered and list(exp.rules) != obs.rules:
        bad.append(f"rules order: expected {list(exp.rules)}, kernel {obs.rules}")
    if exp.ct is not None and (obs.ct or "") != exp.ct:
        bad.append(f"ct: expected {exp.ct}, kernel {obs.ct}")
    if exp.reason is not None and exp.reason not in obs.reason:
        bad.append(f"reason: expected {exp.reason!r} in kernel reason {obs.reason!r}")
    for k, v in (exp.final or {}).items():
        got = obs.final.get(k)
        if k in ("tos", "mark") and got is not None:
            if int(got, 0) != int(v, 0):
                bad.append(f"final {k}: expected {v}, kernel {got}")
        elif got != v:
            bad.append(f"final {k}: expected {v}, kernel {got}")
    return bad


# ---------------------------------------------------------------------------------------------
# comparison with the engine
# ---------------------------------------------------------------------------------------------

FIELDS = ("disposition", "egress", "final", "rules", "replies", "conntrack", "socket")


@dataclass(frozen=True)
class Mismatch:
    field: str
    kernel: str
    engine: str

    def text(self) -> str:
        return f"{self.field}: kernel {self.kernel} | engine {self.engine}"


def engine_rules(journey: Any) -> list[str]:
    return [_ref(str(r.backend), r.table, r.chain, r.index) for r in journey.rules_hit]


def engine_replies(journey: Any) -> list[str]:
    out = []
    for r in journey.verdict.replies:
        kind = str(r.kind)
        if kind in ("icmp", "icmpv6"):
            out.append(f"{kind} {r.type}/{r.code}")
        else:
            out.append(kind)
    return sorted(out)


def _engine_final(journey: Any) -> dict[str, str]:
    p = journey.verdict.packet
    if p is None:
        return {}
    out = {"src": str(p.src) if p.src is not None else "None", "dst": str(p.dst),
           "ttl": str(p.ttl), "tos": hex(p.tos), "mark": hex(p.mark)}
    if p.sport is not None:
        out["sport"] = str(p.sport)
    if p.dport is not None:
        out["dport"] = str(p.dport)
    return out


def compare(obs: Observed, journey: Any) -> list[Mismatch]:
    """Field by field: disposition, egress, final headers, rules hit, replies, conntrack, socket."""
    out: list[Mismatch] = []
    v = journey.verdict
    disp = str(v.disposition)
    if disp != obs.disposition:
        out.append(Mismatch("disposition", f"{obs.disposition} ({obs.reason})",
                            f"{disp} ({v.code}: {v.reason})"))
    if obs.disposition in ("forwarded", "sent") and (v.egress or None) != obs.egress:
        out.append(Mismatch("egress", str(obs.egress), str(v.egress)))
    if obs.final and obs.disposition == disp:
        ef = _engine_final(journey)
        if not ef:
            out.append(Mismatch("final", str(obs.final), "no final packet"))
        for k, kv in obs.final.items():
            ev = ef.get(k)
            if ev is None and not ef:
                continue
            numeric = k in ("tos", "mark")
            same = (ev is not None and int(ev, 0) == int(kv, 0)) if numeric else ev == kv
            if not same and k in ("src", "dst") and ev is not None:
                same = _same_addr(ev, kv)  # ::ffff:10.1.0.1 is printed ::ffff:a01:1 by Python
            if not same:
                out.append(Mismatch(f"final.{k}", kv, str(ev)))
    er = engine_rules(journey)
    if Counter(er) != Counter(obs.rules):
        missing = list((Counter(obs.rules) - Counter(er)).elements())
        extra = list((Counter(er) - Counter(obs.rules)).elements())
        out.append(Mismatch("rules", " ".join(obs.rules) or "-",
                            f"{' '.join(er) or '-'}  (engine misses {missing or '-'}, "
                            f"engine extra {extra or '-'})"))
    elif obs.rules_ordered and er != obs.rules:
        out.append(Mismatch("rules.order", " ".join(obs.rules), " ".join(er)))
    erp = engine_replies(journey)
    if erp != sorted(obs.replies):
        out.append(Mismatch("replies", ",".join(sorted(obs.replies)) or "-", ",".join(erp) or "-"))
    if obs.ct is not None:
        ect = journey.conntrack.state if journey.conntrack is not None else None
        if (ect or "").upper() != obs.ct:
            out.append(Mismatch("conntrack", obs.ct, str(ect)))
        elif obs.ct_direction and journey.conntrack.direction and \
                journey.conntrack.direction != obs.ct_direction:
            out.append(Mismatch("conntrack.direction", obs.ct_direction,
                                str(journey.conntrack.direction)))
    if obs.socket and disp == "delivered":
        s = v.socket
        es = None if s is None else f"{s.proto} {_addr(s.addr)}:{s.port}"
        if es != obs.socket:
            out.append(Mismatch("socket", obs.socket, str(es)))
    return out


def _same_addr(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return False


def _addr(a: str) -> str:
    try:
        ip = ipaddress.ip_address(a)
    except ValueError:
        return a
    return f"[{ip}]" if ip.version == 6 else str(ip)


def applicable(obs: Observed, journey: Any) -> list[str]:
    """The fields ``compare`` checked for this packet (for per-field agreement figures)."""
    out = ["disposition", "rules", "replies"]
    disp = str(journey.verdict.disposition)
    if obs.disposition in ("forwarded", "sent"):
        out.append("egress")
    if obs.final and obs.disposition == disp:
        out.append("final")
    if obs.ct is not None:
        out.append("conntrack")
    if obs.socket and disp == "delivered":
        out.append("socket")
    return out
