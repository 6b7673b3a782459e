"""The one-line packet spec: parse ``in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:80 flags S``.

Grammar (words separated by spaces; ``>`` may touch its neighbours)::

    [in IFACE | local [uid N]] PROTO [SRC] > DST [OPTION ...]

    PROTO   tcp | udp | icmp | icmpv6 | sctp | proto N|NAME
    SRC/DST ADDR | ADDR:PORT | [IPV6]:PORT | IPV6 (a bare IPv6 is an address) | :PORT (local SRC)
    OPTION  flags LETTERS       TCP flags, letters of F S R P A U E C (e.g. S, SA, PA, FA, R),
                                or ``none``
            type N|NAME [code N] ICMP / ICMPv6 type (echo-request, time-exceeded, ...) and code
            id N                ICMP echo identifier
            mark N  tos N  ttl N (hlim N)  len N      numbers in decimal or 0x hex
            df                  IPv4 don't-fragment bit
            mac MAC  smac MAC   destination / source MAC of the frame
            vlan N              802.1Q tag on the frame
            frag N  mf          fragment offset in bytes, more-fragments bit
            badsum  ihl N  version N                   broken IPv4 headers (for ip_rcv checks)

Defaults (documented in docs/trace-json.md and the README):
- no ``in``/``local`` prefix: a packet arriving from the network on the interface the route
  back to its source points at (the engine infers it and says so);
- ``tcp`` without ``flags``: ``flags S`` (a connection attempt);
- TCP/UDP/SCTP without a source port: ``40000``; a destination port is required;
- ``icmp`` without ``type``: echo-request (8); ``icmpv6``: echo-request (128); code 0;
- a ``local`` packet may omit its source address: the kernel selects it (route source selection);
  an arriving packet must name its source.

``parse_spec(text) -> Packet`` and ``format_spec(packet) -> str`` round-trip:
``parse_spec(format_spec(p)) == p`` for every packet ``parse_spec`` returns.

Pure: no I/O; depends only on ``journey.model`` and ``journey.errors``.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from journey.errors import PacketSpecError
from journey.model.family import Family, IPAddress
from journey.model.packet import PROTO_NAMES, TCP_FLAG_BITS, Packet

DEFAULT_SPORT = 40000
DEFAULT_TCP_FLAGS = "S"

ICMP_TYPES: dict[str, int] = {
    "echo-reply": 0,
    "destination-unreachable": 3,
    "source-quench": 4,
    "redirect": 5,
    "echo-request": 8,
    "router-advertisement": 9,
    "router-solicitation": 10,
    "time-exceeded": 11,
    "parameter-problem": 12,
    "timestamp-request": 13,
    "timestamp-reply": 14,
}
ICMPV6_TYPES: dict[str, int] = {
    "destination-unreachable": 1,
    "packet-too-big": 2,
    "time-exceeded": 3,
    "parameter-problem": 4,
    "echo-request": 128,
    "echo-reply": 129,
    "router-solicitation": 133,
    "router-advertisement": 134,
    "neighbour-solicitation": 135,
    "neighbor-solicitation": 135,
    "neighbour-advertisement": 136,
    "neighbor-advertisement": 136,
    "redirect": 137,
}

NAMED_PROTOS: dict[str, int] = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "sctp": 132}
PROTO_ALIASES: dict[str, int] = {"icmp6": 58, "ipv6-icmp": 58}
PORT_PROTOS = frozenset({6, 17, 132, 136})
ICMP_PROTOS = frozenset({1, 58})
_PRINT_NAMES: dict[int, str] = {v: k for k, v in NAMED_PROTOS.items()}

OPTIONS = (
    "flags", "type", "code", "id", "mark", "tos", "ttl", "hlim", "len", "df", "mac", "smac",
    "vlan", "frag", "mf", "badsum", "ihl", "version",
)

_TOKEN = re.compile(r">|[^\s>]+")
_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


@dataclass(frozen=True, slots=True)
class _Tok:
    text: str
    col: int  # 1-based column of the first character


@dataclass(slots=True)
class _Endpoint:
    addr: IPAddress | None
    port: int | None


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = [_Tok(m.group(0), m.start() + 1) for m in _TOKEN.finditer(text)]
        self.pos = 0

    # -- token helpers -------------------------------------------------------------------------
    def error(self, message: str, tok: _Tok | None = None) -> PacketSpecError:
        col = tok.col if tok is not None else len(self.text.rstrip()) + 1
        return PacketSpecError(f"column {col}: {message}", spec=self.text, column=col)

    def peek(self) -> _Tok | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def next(self, what: str) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise self.error(f"expected {what}, found the end of the spec")
        self.pos += 1
        return tok

    def number(self, what: str, lo: int, hi: int) -> int:
        tok = self.next(what)
        return _number(tok.text, what, lo, hi, lambda m: self.error(m, tok))

    # -- grammar -------------------------------------------------------------------------------
    def parse(self) -> Packet:
        if not self.toks:
            raise PacketSpecError(
                "column 1: empty packet spec (expected e.g. 'in eth0 tcp 198.51.100.7 > 192.0.2.10:80')",
                spec=self.text, column=1)
        iif: str | None = None
        local = False
        uid: int | None = None
        head = self.peek()
        assert head is not None
        if head.text == "in":
            self.pos += 1
            iif = self.next("an interface name after 'in'").text
        elif head.text == "local":
            self.pos += 1
            local = True
            nxt = self.peek()
            if nxt is not None and nxt.text == "uid":
                self.pos += 1
                uid = self.number("a user id after 'uid'", 0, 2**32 - 1)

        proto_tok = self.next("a protocol (tcp, udp, icmp, icmpv6, sctp or 'proto N')")
        proto = self._proto(proto_tok)

        src_tok: _Tok | None = None
        src = _Endpoint(None, None)
        tok = self.next("'>' and a destination")
        if tok.text != ">":
            src_tok = tok
            src = self._endpoint(tok, "source")
            arrow = self.next("'>' before the destination")
            if arrow.text != ">":
                raise self.error(f"expected '>' before the destination, found {arrow.text!r}", arrow)
        dst_tok = self.next("a destination address")
        dst = self._endpoint(dst_tok, "destination")
        if dst.addr is None:
            raise self.error("the destination needs an address", dst_tok)

        family = Family.of(dst.addr)
        if src.addr is not None and Family.of(src.addr) is not family:
            assert src_tok is not None
            raise self.error("source and destination are of different address families", src_tok)
        if src.addr is None and not local:
            where = src_tok or dst_tok
            raise self.error(
                "a packet arriving from the network needs a source address (or say 'local')", where)
        if proto == 1 and family is Family.IPV6:
            raise self.error("icmp with IPv6 addresses: use icmpv6", proto_tok)
        if proto == 58 and family is Family.IPV4:
            raise self.error("icmpv6 with IPv4 addresses: use icmp", proto_tok)
        if proto in PORT_PROTOS:
            if dst.port is None:
                raise self.error(
                    f"{_print_proto(proto)} needs a destination port (ADDR:PORT, [IPV6]:PORT)",
                    dst_tok)
        else:
            for ep, t in ((src, src_tok), (dst, dst_tok)):
                if ep.port is not None:
                    raise self.error(f"{_print_proto(proto)} has no ports", t)

        pkt = Packet(
            family=family,
            proto=proto,
            dst=dst.addr,
            src=src.addr,
            sport=(src.port if src.port is not None else DEFAULT_SPORT) if proto in PORT_PROTOS else None,
            dport=dst.port,
            tcp_flags=DEFAULT_TCP_FLAGS if proto == 6 else "",
            icmp_type=(8 if proto == 1 else 128) if proto in ICMP_PROTOS else None,
            icmp_code=0 if proto in ICMP_PROTOS else None,
            iif=iif,
            local=local,
            uid=uid,
        )
        return self._options(pkt, proto_tok)

    def _proto(self, tok: _Tok) -> int:
        word = tok.text.lower()
        if word in NAMED_PROTOS:
            return NAMED_PROTOS[word]
        if word in PROTO_ALIASES:
            return PROTO_ALIASES[word]
        if word == "proto":
            ntok = self.next("a protocol number or name after 'proto'")
            name = ntok.text.lower()
            if name in NAMED_PROTOS:
                return NAMED_PROTOS[name]
            by_name = {v: k for k, v in PROTO_NAMES.items()}
            if name in by_name:
                return by_name[name]
            return _number(ntok.text, "a protocol number", 0, 255, lambda m: self.error(m, ntok))
        raise self.error(
            f"unknown protocol {tok.text!r} (expected tcp, udp, icmp, icmpv6, sctp or 'proto N')", tok)

    def _endpoint(self, tok: _Tok, what: str) -> _Endpoint:
        text = tok.text
        bad = f"bad {what} {text!r} (expected ADDR, ADDR:PORT or [IPV6]:PORT)"
        addr_text: str
        port_text: str | None = None
        if text.startswith("["):
            close = text.find("]")
            if close < 0:
                raise self.error(f"{bad}: missing ']'", tok)
            addr_text = text[1:close]
            rest = text[close + 1:]
            if rest:
                if not rest.startswith(":"):
                    raise self.error(bad, tok)
                port_text = rest[1:]
        elif text.startswith(":") and text.count(":") == 1:
            addr_text = ""
            port_text = text[1:]
        elif text.count(":") == 1:
            addr_text, port_text = text.split(":")
        else:
            addr_text = text
        addr: IPAddress | None = None
        if addr_text:
            try:
                addr = ipaddress.ip_address(addr_text)
            except ValueError:
                raise self.error(bad, tok) from None
        elif what == "destination":
            raise self.error(bad, tok)
        port: int | None = None
        if port_text is not None:
            port = _number(port_text, f"a {what} port", 0, 65535, lambda m: self.error(m, tok))
        return _Endpoint(addr, port)

    def _options(self, pkt: Packet, proto_tok: _Tok) -> Packet:
        seen: set[str] = set()
        while (tok := self.peek()) is not None:
            self.pos += 1
            word = tok.text.lower()
            if word not in OPTIONS:
                hint = difflib.get_close_matches(word, OPTIONS, n=1)
                extra = f"; did you mean {hint[0]!r}?" if hint else ""
                raise self.error(
                    f"unknown option {tok.text!r} (expected {', '.join(OPTIONS)}){extra}", tok)
            key = "ttl" if word == "hlim" else word
            if key in seen:
                raise self.error(f"option {word!r} given twice", tok)
            seen.add(key)
            pkt = self._option(pkt, word, tok)
        return pkt

    def _option(self, pkt: Packet, word: str, tok: _Tok) -> Packet:
        if word == "flags":
            if pkt.proto != 6:
                raise self.error("'flags' applies to tcp only", tok)
            ftok = self.next("TCP flag letters after 'flags' (e.g. S, SA, PA)")
            letters = ftok.text.upper()
            if letters == "NONE":
                return replace(pkt, tcp_flags="")
            bad = [c for c in letters if c not in TCP_FLAG_BITS]
            if bad or not letters:
                raise self.error(
                    f"bad TCP flags {ftok.text!r} (letters of {''.join(TCP_FLAG_BITS)})", ftok)
            return replace(pkt, tcp_flags=letters)
        if word in ("type", "code", "id"):
            if pkt.proto not in ICMP_PROTOS:
                raise self.error(f"{word!r} applies to icmp and icmpv6 only", tok)
            if word == "type":
                ttok = self.next("an ICMP type number or name")
                names = ICMP_TYPES if pkt.proto == 1 else ICMPV6_TYPES
                if ttok.text.lower() in names:
                    return replace(pkt, icmp_type=names[ttok.text.lower()])
                if not re.fullmatch(r"(0x)?[0-9a-fA-F]+", ttok.text):
                    raise self.error(
                        f"unknown ICMP type {ttok.text!r} (a number or one of {', '.join(names)})",
                        ttok)
                return replace(pkt, icmp_type=_number(
                    ttok.text, "an ICMP type", 0, 255, lambda m: self.error(m, ttok)))
            if word == "code":
                return replace(pkt, icmp_code=self.number("an ICMP code", 0, 255))
            return replace(pkt, icmp_id=self.number("an ICMP identifier", 0, 65535))
        if word == "mark":
            return replace(pkt, mark=self.number("a mark (e.g. 0x10)", 0, 2**32 - 1))
        if word == "tos":
            return replace(pkt, tos=self.number("a TOS / traffic class byte", 0, 255))
        if word in ("ttl", "hlim"):
            return replace(pkt, ttl=self.number("a TTL / hop limit", 0, 255))
        if word == "len":
            return replace(pkt, length=self.number("a total IP length in bytes", 0, 65535 + 40))
        if word == "df":
            if pkt.family is Family.IPV6:
                raise self.error("'df' is an IPv4 header bit (IPv6 never fragments in routers)", tok)
            return replace(pkt, df=True)
        if word in ("mac", "smac"):
            mtok = self.next("a MAC address (aa:bb:cc:dd:ee:ff)")
            if not _MAC.match(mtok.text):
                raise self.error(f"bad MAC address {mtok.text!r} (expected aa:bb:cc:dd:ee:ff)", mtok)
            mac = mtok.text.lower()
            return replace(pkt, dst_mac=mac) if word == "mac" else replace(pkt, src_mac=mac)
        if word == "vlan":
            return replace(pkt, vlan=self.number("a VLAN id", 0, 4095))
        if word == "frag":
            return replace(pkt, frag_offset=self.number("a fragment offset in bytes", 0, 65535))
        if word == "mf":
            return replace(pkt, more_fragments=True)
        if word == "badsum":
            return replace(pkt, checksum_ok=False)
        if word == "ihl":
            return replace(pkt, ihl=self.number("an IPv4 header length in 32-bit words", 0, 15))
        # version
        return replace(pkt, version=self.number("an IP version number", 0, 15))


def _number(text: str, what: str, lo: int, hi: int,
            err: Callable[[str], PacketSpecError]) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise err(f"expected {what}, found {text!r}") from None
    if not lo <= value <= hi:
        raise err(f"{what} out of range ({lo}..{hi}): {text}")
    return value


def _print_proto(proto: int) -> str:
    return _PRINT_NAMES.get(proto, f"proto {proto}")


def parse_spec(text: str) -> Packet:
    """Parse a one-line packet spec into a Packet; PacketSpecError names the column at fault."""
    return _Parser(text).parse()


def _fmt_endpoint(addr: IPAddress | None, port: int | None) -> str:
    a = "" if addr is None else str(addr)
    if port is None:
        return a
    if addr is not None and addr.version == 6:
        return f"[{a}]:{port}"
    return f"{a}:{port}"


def format_spec(pkt: Packet) -> str:
    """The canonical spec of a packet (``parse_spec(format_spec(p)) == p``)."""
    words: list[str] = []
    if pkt.local:
        words.append("local")
        if pkt.uid is not None:
            words += ["uid", str(pkt.uid)]
    elif pkt.iif is not None:
        words += ["in", pkt.iif]
    words.append(_print_proto(pkt.proto))
    src = _fmt_endpoint(pkt.src, pkt.sport)
    if src:
        words.append(src)
    words += [">", _fmt_endpoint(pkt.dst, pkt.dport)]
    if pkt.proto == 6:
        words += ["flags", pkt.tcp_flags or "none"]
    if pkt.proto in ICMP_PROTOS:
        if pkt.icmp_type is not None:
            words += ["type", str(pkt.icmp_type)]
        if pkt.icmp_code:
            words += ["code", str(pkt.icmp_code)]
        if pkt.icmp_id is not None:
            words += ["id", str(pkt.icmp_id)]
    if pkt.mark:
        words += ["mark", hex(pkt.mark)]
    if pkt.tos:
        words += ["tos", hex(pkt.tos)]
    if pkt.ttl != 64:
        words += ["ttl", str(pkt.ttl)]
    if pkt.length is not None:
        words += ["len", str(pkt.length)]
    if pkt.df:
        words.append("df")
    if pkt.dst_mac:
        words += ["mac", pkt.dst_mac]
    if pkt.src_mac:
        words += ["smac", pkt.src_mac]
    if pkt.vlan is not None:
        words += ["vlan", str(pkt.vlan)]
    if pkt.frag_offset:
        words += ["frag", str(pkt.frag_offset)]
    if pkt.more_fragments:
        words.append("mf")
    if pkt.checksum_ok is False:
        words.append("badsum")
    if pkt.ihl != 5:
        words += ["ihl", str(pkt.ihl)]
    if pkt.version is not None:
        words += ["version", str(pkt.version)]
    return " ".join(words)
