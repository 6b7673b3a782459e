"""Parsers that turn raw tool output into model values: ``ip`` (JSON and text), ``ss``,
``conntrack -L``, ``sysctl -a`` and ``ipset save``.

Pure functions of text: no I/O, no subprocess, no textual, no rich. Every parser takes the text
and ``source`` (the file name, used in errors) and raises ``SnapshotError`` naming the file and
the line (text formats) or the field path (JSON) at fault.

``ip -j`` quirks normalised here (see FACTS.md §4.5): ``"dst": "default"``, host routes without
``/32``/``/128``, table names and numbers as strings, missing ``type``/``protocol``/``table``
(unicast/boot/main), no family field (inferred from addresses, else from the caller's hint, else
from the kernel's dump order: all IPv4 routes come before IPv6 ones), rule ``"not": null``,
``"src": "all"`` with separate ``srclen``/``dstlen``, fwmark/fwmask as hex strings, ipproto by
name. The text forms (what sos reports store) are tokenised into the same field dictionaries and
go through the same normalisers, so JSON and text give identical values.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from journey.errors import SnapshotError
from journey.model.family import Family, IPAddress, IPNetwork
from journey.model.snapshot import (
    Address,
    ConntrackEntry,
    CtTuple,
    Interface,
    IpSet,
    Neighbour,
    Nexthop,
    PolicyRule,
    PortRange,
    Process,
    Route,
    RouteType,
    RuleAction,
    Socket,
)

# -- shared helpers ------------------------------------------------------------------------------

TABLE_IDS = {"unspec": 0, "default": 253, "main": 254, "local": 255}
IP_PROTOS = {
    "ip": 0, "icmp": 1, "igmp": 2, "ipip": 4, "tcp": 6, "egp": 8, "udp": 17, "ipv6": 41,
    "rsvp": 46, "gre": 47, "esp": 50, "ah": 51, "ipv6-icmp": 58, "icmpv6": 58, "ospf": 89,
    "pim": 103, "vrrp": 112, "l2tp": 115, "sctp": 132, "udplite": 136, "dccp": 33, "mptcp": 262,
}
ADDR_FLAGS = (
    "secondary", "temporary", "dynamic", "tentative", "deprecated", "optimistic", "dadfailed",
    "home", "nodad", "mngtmpaddr", "noprefixroute", "autojoin", "stable-privacy", "permanent",
)
NEIGH_STATES = {
    "INCOMPLETE", "REACHABLE", "STALE", "DELAY", "PROBE", "FAILED", "NOARP", "PERMANENT", "NONE",
}
LINK_KINDS = {
    "veth", "bridge", "macvlan", "macvtap", "vlan", "vxlan", "bond", "team", "dummy", "ipvlan",
    "ipvtap", "ipip", "gre", "gretap", "ip6gre", "ip6gretap", "sit", "tun", "wireguard", "vrf",
    "geneve", "ifb", "nlmon", "bareudp", "ip6tnl", "vti", "vti6", "xfrm", "hsr", "ipoib",
    "macsec", "netkit", "erspan", "ip6erspan", "gtp", "batadv", "can", "vcan", "vxcan", "rmnet",
}


def _err(source: str, message: str, *, line: int | None = None,
         field: str | None = None) -> SnapshotError:
    return SnapshotError(message, file=source, line=line, field=field)


def load_json(text: str, source: str) -> Any:
    """``json.loads`` with the error naming the file and line."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _err(source, f"not valid JSON: {exc.msg} (column {exc.colno})",
                   line=exc.lineno) from None


def _json_list(text: str, source: str) -> list[dict[str, Any]]:
    if not text.strip():
        return []
    data = load_json(text, source)
    if not isinstance(data, list):
        raise _err(source, "expected a JSON list of objects (the output of `ip -j ...`)")
    for i, x in enumerate(data):
        if not isinstance(x, dict):
            raise _err(source, "expected an object (the output of `ip -j ...`)", field=f"[{i}]")
    return data


def _seq(value: Any, source: str, where: str, line: int | None = None) -> list[Any]:
    """A JSON list field (absent or null: empty); anything else is an error naming the field."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise _err(source, f"expected a list, got {value!r}", line=line, field=where)
    return value


def _is_json(text: str) -> bool:
    head = text.lstrip()[:1]
    return head in ("[", "{")


def _addr(value: Any, source: str, where: str, line: int | None = None) -> IPAddress:
    try:
        return ipaddress.ip_address(str(value).split("%", 1)[0])
    except ValueError:
        raise _err(source, f"{value!r} is not an IP address", line=line, field=where) from None


def _net(value: str, source: str, where: str, line: int | None = None) -> IPNetwork:
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise _err(source, f"{value!r} is not an IP prefix", line=line, field=where) from None


def _int(value: Any, source: str, where: str, line: int | None = None) -> int:
    if isinstance(value, bool):
        raise _err(source, f"expected a number, got {value!r}", line=line, field=where)
    if isinstance(value, int):
        return value
    try:
        return int(str(value), 0)
    except ValueError:
        raise _err(source, f"expected a number, got {value!r}", line=line, field=where) from None


def table_id(value: Any, source: str, where: str, line: int | None = None) -> int:
    """``"main"`` / ``"local"`` / ``"default"`` / ``"100"`` / 100 -> the table number."""
    if isinstance(value, str) and value in TABLE_IDS:
        return TABLE_IDS[value]
    return _int(value, source, where, line)


def proto_number(value: Any, source: str, where: str, line: int | None = None) -> int:
    if isinstance(value, str) and value.lower() in IP_PROTOS:
        return IP_PROTOS[value.lower()]
    if isinstance(value, str) and value.startswith("ipproto-"):
        value = value[len("ipproto-"):]
    return _int(value, source, where, line)


def _port_range(value: Any, source: str, where: str, line: int | None = None) -> PortRange:
    if isinstance(value, int) and not isinstance(value, bool):
        return PortRange(value, value)
    text = str(value)
    for sep in ("-", ":"):
        if sep in text:
            a, b = text.split(sep, 1)
            return PortRange(_int(a, source, where, line), _int(b, source, where, line))
    n = _int(text, source, where, line)
    return PortRange(n, n)


# -- ip address / ip link ------------------------------------------------------------------------


def _group(value: Any) -> int:
    if value in (None, "default"):
        return 0
    try:
        return int(str(value), 0)
    except ValueError:
        return 0


def _xdp_json(info: Any) -> str | None:
    if not isinstance(info, dict):
        return None
    prog = info.get("prog")
    mode = info.get("mode")
    modes = {1: "xdpdrv", 2: "xdpgeneric", 3: "xdpoffload", 4: "xdpmulti"}
    mode_name = modes.get(mode, str(mode)) if isinstance(mode, int) else str(mode)
    if isinstance(prog, dict) and "id" in prog:
        return f"prog id {prog['id']} ({mode_name})"
    return f"attached ({mode_name})"


def _interface_from_json(item: dict[str, Any], source: str, where: str) -> Interface:
    linkinfo = item.get("linkinfo") or {}
    kind = linkinfo.get("info_kind") if isinstance(linkinfo, dict) else None
    info_data = linkinfo.get("info_data") if isinstance(linkinfo, dict) else None
    vlan_id = None
    if kind == "vlan" and isinstance(info_data, dict) and "id" in info_data:
        vlan_id = _int(info_data["id"], source, f"{where}.linkinfo.info_data.id")
    link = item.get("link") if kind not in (None, "veth") else None
    mac = item.get("address") if item.get("link_type") in ("ether", "loopback", None) else None
    if "ifindex" not in item or "ifname" not in item:
        raise _err(source, "interface without ifindex/ifname", field=where)
    return Interface(
        index=_int(item["ifindex"], source, f"{where}.ifindex"),
        name=str(item["ifname"]),
        kind=kind,
        mac=mac,
        mtu=_int(item.get("mtu", 1500), source, f"{where}.mtu"),
        flags=tuple(str(f) for f in _seq(item.get("flags"), source, f"{where}.flags")),
        operstate=str(item.get("operstate", "UNKNOWN")),
        master=item.get("master"),
        link=link if isinstance(link, str) else None,
        vlan_id=vlan_id,
        xdp=_xdp_json(item.get("xdp")),
        group=_group(item.get("group")),
    )


def _address_from_fields(d: dict[str, Any], ifindex: int, ifname: str, source: str,
                         where: str, line: int | None = None) -> Address:
    if "local" not in d or "prefixlen" not in d:
        raise _err(source, "address without local/prefixlen", line=line, field=where)
    broadcast = d.get("broadcast")
    return Address(
        ifindex=ifindex,
        ifname=ifname,
        address=_addr(d["local"], source, f"{where}.local", line),
        prefixlen=_int(d["prefixlen"], source, f"{where}.prefixlen", line),
        scope=str(d.get("scope", "global")),
        flags=tuple(f for f in ADDR_FLAGS if d.get(f) is True),
        broadcast=_addr(broadcast, source, f"{where}.broadcast", line) if broadcast else None,
        label=d.get("label"),
    )


def parse_ip_addr_json(text: str, source: str) -> tuple[tuple[Interface, ...], tuple[Address, ...]]:
    """``ip -j addr`` / ``ip -j -d addr`` / ``ip -j link`` -> interfaces and addresses."""
    interfaces: list[Interface] = []
    addresses: list[Address] = []
    for i, item in enumerate(_json_list(text, source)):
        iface = _interface_from_json(item, source, f"[{i}]")
        interfaces.append(iface)
        for j, a in enumerate(_seq(item.get("addr_info"), source, f"[{i}].addr_info")):
            if not isinstance(a, dict) or "local" not in a:
                continue  # ip -j addr prints {} for links filtered out by family
            addresses.append(_address_from_fields(a, iface.index, iface.name, source,
                                                  f"[{i}].addr_info[{j}]"))
    return tuple(interfaces), tuple(addresses)


_LINK_HEAD = re.compile(r"^(\d+):\s+([^:@\s]+)(?:@([^:\s]+))?:\s+<([^>]*)>(.*)$")
_ADDR_O_HEAD = re.compile(r"^(\d+):\s+(\S+)\s+(inet6?)\s+(.*)$")


@dataclass(slots=True)
class _LinkAcc:
    index: int
    name: str
    peer: str | None
    flags: tuple[str, ...]
    fields: dict[str, str]
    mac: str | None = None
    kind: str | None = None
    vlan_id: int | None = None
    xdp: str | None = None

    def build(self) -> Interface:
        link = self.peer if self.kind not in (None, "veth") and self.peer not in (None, "NONE") else None
        if link is not None and link.startswith("if") and link[2:].isdigit():
            link = None  # "@ifN": a peer in another namespace, known only by index
        return Interface(
            index=self.index, name=self.name, kind=self.kind, mac=self.mac,
            mtu=int(self.fields.get("mtu", "1500")), flags=self.flags,
            operstate=self.fields.get("state", "UNKNOWN"), master=self.fields.get("master"),
            link=link, vlan_id=self.vlan_id, xdp=self.xdp, group=_group(self.fields.get("group")),
        )


def _addr_text_fields(words: list[str], source: str, lineno: int) -> dict[str, Any]:
    """``inet 10.0.0.1/24 brd 10.0.0.255 scope global secondary eth0`` -> ip -j style fields."""
    family = words[0]
    if len(words) < 2:
        raise _err(source, f"{family} without an address", line=lineno)
    local, _, plen = words[1].partition("/")
    d: dict[str, Any] = {"family": family, "local": local,
                         "prefixlen": plen or ("32" if family == "inet" else "128")}
    rest: list[str] = []
    k = 2
    while k < len(words):  # drop "valid_lft forever preferred_lft forever" (ip -o puts it inline)
        if words[k] in ("valid_lft", "preferred_lft"):
            k += 2
            continue
        rest.append(words[k])
        k += 1
    k = 0
    while k < len(rest):
        w = rest[k]
        if w in ("brd", "peer", "scope", "metric", "proto") and k + 1 < len(rest):
            key = {"brd": "broadcast", "peer": "address"}.get(w, w)
            d[key] = rest[k + 1]
            k += 2
            continue
        if w in ADDR_FLAGS:
            d[w] = True
        elif family == "inet" and k == len(rest) - 1:
            d["label"] = w
        else:
            raise SnapshotError(f"unknown word {w!r} in address", file=source, line=lineno)
        k += 1
    if d.get("broadcast") == "":
        del d["broadcast"]
    return d


def parse_ip_addr_text(text: str, source: str) -> tuple[tuple[Interface, ...], tuple[Address, ...]]:
    """``ip address`` / ``ip -d address`` / ``ip -s -d link`` / ``ip -o addr`` text forms.

    ``ip -o addr`` carries no link flags: its interfaces have only index and name.
    """
    links: dict[int, _LinkAcc] = {}
    order: list[int] = []
    addresses: list[Address] = []
    current: _LinkAcc | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        m = _LINK_HEAD.match(raw)
        if m:
            words = m.group(5).split()
            fields: dict[str, str] = {}
            k = 0
            while k < len(words):
                if k + 1 < len(words) and words[k] in (
                    "mtu", "qdisc", "master", "state", "mode", "group", "qlen", "link-netns",
                    "link-netnsid", "xdp", "xdpgeneric", "xdpoffload", "xdpmulti",
                ):
                    fields[words[k]] = words[k + 1]
                    k += 2
                else:
                    k += 1
            if "mtu" in fields:
                _int(fields["mtu"], source, "mtu", lineno)
            current = _LinkAcc(int(m.group(1)), m.group(2), m.group(3),
                               tuple(f for f in m.group(4).split(",") if f), fields)
            if current.index not in links:
                order.append(current.index)
            links[current.index] = current
            continue
        mo = _ADDR_O_HEAD.match(raw)
        if mo:  # ip -o addr: one address per line, "\" separates the continuation
            index, name = int(mo.group(1)), mo.group(2)
            if index not in links:
                links[index] = _LinkAcc(index, name, None, (), {})
                order.append(index)
            words = [mo.group(3), *mo.group(4).replace("\\", " ").split()]
            d = _addr_text_fields(words, source, lineno)
            addresses.append(_address_from_fields(d, index, name, source, "address", lineno))
            current = None
            continue
        if not raw.startswith((" ", "\t")):
            raise _err(source, f"unexpected line in `ip address` output: {raw.strip()[:60]!r}",
                       line=lineno)
        if current is None:
            continue
        words = raw.split()
        head = words[0]
        if head.startswith("link/"):
            if head in ("link/ether", "link/loopback") and len(words) > 1:
                current.mac = words[1]
        elif head in ("inet", "inet6"):
            d = _addr_text_fields(words, source, lineno)
            addresses.append(_address_from_fields(d, current.index, current.name, source,
                                                  "address", lineno))
        elif head in LINK_KINDS and current.kind is None:
            current.kind = head
            if head == "vlan" and "id" in words:
                idx = words.index("id")
                if idx + 1 < len(words):
                    current.vlan_id = _int(words[idx + 1], source, "vlan id", lineno)
        elif head.startswith("prog/xdp") and "id" in words[:-1]:
            idx = words.index("id")
            mode = next((k for k in ("xdpgeneric", "xdpoffload", "xdpmulti", "xdp")
                         if k in current.fields), "xdp")
            current.xdp = f"prog id {words[idx + 1]} ({'xdpdrv' if mode == 'xdp' else mode})"
    interfaces = tuple(links[i].build() for i in order)
    return interfaces, tuple(addresses)


def parse_ip_addr(text: str, source: str) -> tuple[tuple[Interface, ...], tuple[Address, ...]]:
    """JSON (``ip -j``) or text, whichever the content is."""
    if _is_json(text):
        return parse_ip_addr_json(text, source)
    return parse_ip_addr_text(text, source)


# -- ip route ------------------------------------------------------------------------------------

ROUTE_TYPES = {t.value for t in RouteType}


class _FamilyGuess:
    """Infers the family of an address-less route (``unreachable default``) from dump order."""

    def __init__(self, hint: Family | None) -> None:
        self.hint = hint
        self.seen_v6 = False

    def observe(self, fam: Family) -> Family:
        if fam is Family.IPV6:
            self.seen_v6 = True
        return fam

    def fallback(self) -> Family:
        if self.hint is not None:
            return self.hint
        return Family.IPV6 if self.seen_v6 else Family.IPV4


def _route_family(d: dict[str, Any], guess: _FamilyGuess) -> Family:
    dst = str(d.get("dst", "default"))
    if dst != "default" and dst not in ("0", "any"):
        return guess.observe(Family.IPV6 if ":" in dst else Family.IPV4)
    for key in ("gateway", "prefsrc"):
        if isinstance(d.get(key), str):
            return guess.observe(Family.IPV6 if ":" in d[key] else Family.IPV4)
    nexthops = d.get("nexthops")
    for nh in nexthops if isinstance(nexthops, list) else ():
        if isinstance(nh, dict) and isinstance(nh.get("gateway"), str):
            return guess.observe(Family.IPV6 if ":" in nh["gateway"] else Family.IPV4)
    return guess.fallback()


def _route_from_fields(d: dict[str, Any], guess: _FamilyGuess, source: str, where: str,
                       line: int | None = None) -> Route:
    family = _route_family(d, guess)
    dst_text = str(d.get("dst", "default"))
    if dst_text in ("default", "0", "any"):
        dst_text = "::/0" if family is Family.IPV6 else "0.0.0.0/0"
    elif "/" not in dst_text:
        dst_text += "/128" if family is Family.IPV6 else "/32"
    dst = _net(dst_text, source, f"{where}.dst", line)
    rtype = str(d.get("type", "unicast"))
    if rtype not in ROUTE_TYPES:
        raise _err(source, f"unknown route type {rtype!r}", line=line, field=f"{where}.type")
    gateway = d.get("gateway")
    if gateway is None and isinstance(d.get("via"), dict):
        gateway = d["via"].get("host")
    mtu = d.get("mtu")
    for m in _seq(d.get("metrics"), source, f"{where}.metrics", line):
        if isinstance(m, dict) and "mtu" in m:
            mtu = m["mtu"]
    nexthops = []
    for k, nh in enumerate(_seq(d.get("nexthops"), source, f"{where}.nexthops", line)):
        if not isinstance(nh, dict):
            raise _err(source, f"expected an object, got {nh!r}", line=line,
                       field=f"{where}.nexthops[{k}]")
        gw = nh.get("gateway")
        if gw is None and isinstance(nh.get("via"), dict):
            gw = nh["via"].get("host")
        nexthops.append(Nexthop(
            gateway=_addr(gw, source, f"{where}.nexthops[{k}].gateway", line) if gw else None,
            dev=nh.get("dev"),
            weight=_int(nh.get("weight", 1), source, f"{where}.nexthops[{k}].weight", line),
            flags=tuple(str(f) for f in _seq(nh.get("flags"), source,
                                             f"{where}.nexthops[{k}].flags", line)),
        ))
    tos = d.get("tos", d.get("dsfield", 0))
    return Route(
        family=family,
        table=table_id(d.get("table", "main"), source, f"{where}.table", line),
        dst=dst,
        type=RouteType(rtype),
        gateway=_addr(gateway, source, f"{where}.gateway", line) if gateway else None,
        dev=d.get("dev"),
        prefsrc=_addr(d["prefsrc"], source, f"{where}.prefsrc", line) if d.get("prefsrc") else None,
        metric=_int(d.get("metric", 0), source, f"{where}.metric", line),
        scope=str(d.get("scope", "universe")),
        protocol=str(d.get("protocol", "boot")),
        tos=_int(tos, source, f"{where}.tos", line) if tos else 0,
        mtu=_int(mtu, source, f"{where}.mtu", line) if mtu else None,
        nexthops=tuple(nexthops),
        flags=tuple(str(f) for f in _seq(d.get("flags"), source, f"{where}.flags", line)),
    )


def parse_ip_route_json(text: str, source: str, family: Family | None = None) -> tuple[Route, ...]:
    """``ip -j [-6] route show table all``; ``family`` is the hint for address-less routes."""
    guess = _FamilyGuess(family)
    return tuple(_route_from_fields(d, guess, source, f"[{i}]")
                 for i, d in enumerate(_json_list(text, source)))


_ROUTE_KEYS = {
    "via": "gateway", "dev": "dev", "table": "table", "proto": "protocol", "scope": "scope",
    "src": "prefsrc", "metric": "metric", "mtu": "mtu", "tos": "tos", "dsfield": "tos",
    "weight": "weight",
}
_ROUTE_IGNORED_KEYS = {
    "pref", "expires", "hoplimit", "advmss", "rtt", "rttvar", "ssthresh", "cwnd", "initcwnd",
    "initrwnd", "quickack", "features", "reordering", "window", "realms", "realm", "nhid",
    "error", "congctl", "fastopen_no_cookie", "rto_min", "ttl-propagate", "cache", "age",
    "used", "users", "iif", "from", "encap", "lastuse", "ipid",
}
_ROUTE_FLAGS = {"onlink", "linkdown", "pervasive", "offload", "trap", "dead", "notify",
                "rt_offload", "rt_trap", "offload_failed", "unresolved"}


def _route_text_fields(words: list[str], source: str, lineno: int) -> dict[str, Any]:
    d: dict[str, Any] = {"flags": []}
    k = 0
    if words and words[0] in ROUTE_TYPES:
        d["type"] = words[0]
        k = 1
    if k < len(words):
        d["dst"] = words[k]
        k += 1
    _route_text_pairs(words, k, d, source, lineno)
    return d


def _route_text_pairs(words: list[str], k: int, d: dict[str, Any], source: str,
                      lineno: int) -> None:
    while k < len(words):
        w = words[k]
        if w in _ROUTE_FLAGS:
            d.setdefault("flags", []).append(w)
            k += 1
        elif w == "via":
            nxt = words[k + 1] if k + 1 < len(words) else ""
            if nxt in ("inet", "inet6") and k + 2 < len(words):
                d["gateway"] = words[k + 2]
                k += 3
            else:
                d["gateway"] = nxt
                k += 2
        elif w == "mtu" and k + 1 < len(words) and words[k + 1] == "lock":
            d["mtu"] = words[k + 2] if k + 2 < len(words) else ""
            k += 3
        elif w in _ROUTE_KEYS and k + 1 < len(words):
            d[_ROUTE_KEYS[w]] = words[k + 1]
            k += 2
        elif w in _ROUTE_IGNORED_KEYS:
            k += 2 if k + 1 < len(words) else 1
        elif w == "nexthop":
            k += 1
        else:
            raise _err(source, f"unknown word {w!r} in route", line=lineno)


def parse_ip_route_text(text: str, source: str, family: Family | None = None) -> tuple[Route, ...]:
    """``ip [-6] route show table all`` text, multipath continuation lines included."""
    guess = _FamilyGuess(family)
    entries: list[tuple[dict[str, Any], int]] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        words = raw.split()
        if raw[0] in " \t":
            if words[0] != "nexthop" or not entries:
                raise _err(source, f"unexpected continuation line {raw.strip()[:60]!r}",
                           line=lineno)
            nh: dict[str, Any] = {"flags": []}
            _route_text_pairs(words, 1, nh, source, lineno)
            entries[-1][0].setdefault("nexthops", []).append(nh)
            continue
        entries.append((_route_text_fields(words, source, lineno), lineno))
    return tuple(_route_from_fields(d, guess, source, "route", line) for d, line in entries)


def parse_ip_route(text: str, source: str, family: Family | None = None) -> tuple[Route, ...]:
    if _is_json(text):
        return parse_ip_route_json(text, source, family)
    return parse_ip_route_text(text, source, family)


# -- ip rule -------------------------------------------------------------------------------------


def _prefix_or_none(value: Any, length: Any, source: str, where: str,
                    line: int | None) -> IPNetwork | None:
    if value in (None, "all"):
        return None
    text = str(value)
    if "/" not in text:
        if length is None:
            length = 128 if ":" in text else 32
        text = f"{text}/{length}"
    return _net(text, source, where, line)


def _rule_from_fields(d: dict[str, Any], family: Family, source: str, where: str,
                      line: int | None = None) -> PolicyRule:
    action = RuleAction.LOOKUP
    table: int | None = None
    goto: int | None = None
    l3mdev = "l3mdev" in d
    act = d.get("action")
    if "goto" in d:
        action = RuleAction.GOTO
        goto = _int(d["goto"], source, f"{where}.goto", line)
    elif act in ("blackhole", "unreachable", "prohibit", "nop"):
        action = RuleAction(act)
    elif "table" in d and not l3mdev:
        table = table_id(d["table"], source, f"{where}.table", line)
    elif not l3mdev:
        raise _err(source, "rule without lookup/goto/action", line=line, field=where)
    fwmark = fwmask = None
    if d.get("fwmark") is not None:
        fwmark = _int(d["fwmark"], source, f"{where}.fwmark", line)
        fwmask = _int(d.get("fwmask", 0xFFFFFFFF), source, f"{where}.fwmask", line)
    sport = dport = uidrange = None
    if "sport" in d:
        sport = _port_range(d["sport"], source, f"{where}.sport", line)
    elif "sport_start" in d:
        sport = PortRange(_int(d["sport_start"], source, where, line),
                          _int(d.get("sport_end", d["sport_start"]), source, where, line))
    if "dport" in d:
        dport = _port_range(d["dport"], source, f"{where}.dport", line)
    elif "dport_start" in d:
        dport = PortRange(_int(d["dport_start"], source, where, line),
                          _int(d.get("dport_end", d["dport_start"]), source, where, line))
    if "uidrange" in d:
        uidrange = _port_range(d["uidrange"], source, f"{where}.uidrange", line)
    elif "uid_start" in d:
        uidrange = PortRange(_int(d["uid_start"], source, where, line),
                             _int(d.get("uid_end", d["uid_start"]), source, where, line))
    tos = d.get("tos", d.get("dsfield", 0))
    sup_grp = d.get("suppress_ifgroup")
    return PolicyRule(
        family=family,
        priority=_int(d.get("priority", 0), source, f"{where}.priority", line),
        action=action,
        table=table,
        invert="not" in d,
        src=_prefix_or_none(d.get("src"), d.get("srclen"), source, f"{where}.src", line),
        dst=_prefix_or_none(d.get("dst"), d.get("dstlen"), source, f"{where}.dst", line),
        iif=d.get("iif"),
        oif=d.get("oif"),
        fwmark=fwmark,
        fwmask=fwmask,
        tos=_int(tos, source, f"{where}.tos", line) if tos not in (0, None, "default") else 0,
        ipproto=proto_number(d["ipproto"], source, f"{where}.ipproto", line) if "ipproto" in d else None,
        sport=sport,
        dport=dport,
        uidrange=uidrange,
        goto=goto,
        suppress_prefixlength=(_int(d["suppress_prefixlength"], source, where, line)
                               if "suppress_prefixlength" in d else None),
        suppress_ifgroup=_group(sup_grp) if sup_grp is not None else None,
        l3mdev=l3mdev,
        protocol=str(d["protocol"]) if d.get("protocol") is not None else None,
    )


def parse_ip_rule_json(text: str, source: str, family: Family) -> tuple[PolicyRule, ...]:
    """``ip -j [-6] rule``. ``family`` comes from the command (the output does not say)."""
    return tuple(_rule_from_fields(d, family, source, f"[{i}]")
                 for i, d in enumerate(_json_list(text, source)))


_RULE_KEYS = {
    "from": "src", "to": "dst", "tos": "tos", "dsfield": "tos", "iif": "iif", "oif": "oif",
    "lookup": "table", "table": "table", "goto": "goto", "suppress_prefixlength":
    "suppress_prefixlength", "suppress_ifgroup": "suppress_ifgroup", "uidrange": "uidrange",
    "ipproto": "ipproto", "sport": "sport", "dport": "dport", "proto": "protocol",
    "realms": "realms", "pref": "priority", "priority": "priority", "nat": "nat",
    "map-to": "nat",
}


def parse_ip_rule_text(text: str, source: str, family: Family) -> tuple[PolicyRule, ...]:
    """``ip [-4|-6] rule [list]`` text: ``1100:\\tfrom all fwmark 0x10/0xff lookup 200``."""
    rules: list[PolicyRule] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        prio, sep, rest = raw.partition(":")
        if not sep or not prio.strip().isdigit():
            raise _err(source, f"expected 'PRIORITY: selector action', got {raw.strip()[:60]!r}",
                       line=lineno)
        d: dict[str, Any] = {"priority": prio.strip()}
        words = rest.split()
        k = 0
        while k < len(words):
            w = words[k]
            if w == "not":
                d["not"] = None
                k += 1
            elif w == "fwmark" and k + 1 < len(words):
                mark, _, mask = words[k + 1].partition("/")
                d["fwmark"] = mark
                if mask:
                    d["fwmask"] = mask
                k += 2
            elif w == "lookup" and k + 1 < len(words) and words[k + 1] == "[l3mdev-table]":
                d["l3mdev"] = None
                k += 2
            elif w in ("blackhole", "unreachable", "prohibit", "nop"):
                d["action"] = w
                k += 1
            elif w == "l3mdev":
                d["l3mdev"] = None
                k += 1
            elif w in ("[detached]", "[unresolved]", "unresolved"):
                k += 1
            elif w in _RULE_KEYS and k + 1 < len(words):
                d[_RULE_KEYS[w]] = words[k + 1]
                k += 2
            else:
                raise _err(source, f"unknown word {w!r} in rule", line=lineno)
        rules.append(_rule_from_fields(d, family, source, "rule", lineno))
    return tuple(rules)


def parse_ip_rule(text: str, source: str, family: Family) -> tuple[PolicyRule, ...]:
    if _is_json(text):
        return parse_ip_rule_json(text, source, family)
    return parse_ip_rule_text(text, source, family)


# -- ip neigh ------------------------------------------------------------------------------------


def _neigh_from_fields(d: dict[str, Any], source: str, where: str,
                       line: int | None = None) -> Neighbour:
    if "dst" not in d or "dev" not in d:
        raise _err(source, "neighbour without dst/dev", line=line, field=where)
    addr = _addr(d["dst"], source, f"{where}.dst", line)
    state = d.get("state", ())
    if isinstance(state, str):
        state = [state]
    state = _seq(state, source, f"{where}.state", line)
    return Neighbour(
        family=Family.of(addr),
        address=addr,
        ifname=str(d["dev"]),
        lladdr=d.get("lladdr"),
        state=tuple(str(s) for s in state),
        router="router" in d,
    )


def parse_ip_neigh_json(text: str, source: str) -> tuple[Neighbour, ...]:
    return tuple(_neigh_from_fields(d, source, f"[{i}]")
                 for i, d in enumerate(_json_list(text, source)))


def parse_ip_neigh_text(text: str, source: str) -> tuple[Neighbour, ...]:
    """``ip neigh`` / ``ip -s -s neigh show`` / ``ip neigh show nud noarp`` text."""
    out: list[Neighbour] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        words = raw.split()
        if not words:
            continue
        d: dict[str, Any] = {"dst": words[0], "state": []}
        k = 1
        while k < len(words):
            w = words[k]
            if w in ("dev", "lladdr", "proto") and k + 1 < len(words):
                d[w] = words[k + 1]
                k += 2
            elif w in ("ref", "used", "probes", "nud"):
                k += 2
            elif w == "router":
                d["router"] = None
                k += 1
            elif w in NEIGH_STATES:
                d["state"].append(w)
                k += 1
            else:
                k += 1  # "proxy", "extern_learn", "1probes" (iproute2 prints no space) ...
        out.append(_neigh_from_fields(d, source, "neighbour", lineno))
    return tuple(out)


def parse_ip_neigh(text: str, source: str) -> tuple[Neighbour, ...]:
    if _is_json(text):
        return parse_ip_neigh_json(text, source)
    return parse_ip_neigh_text(text, source)


# -- ss ------------------------------------------------------------------------------------------

_SS_NETIDS = {"tcp", "udp", "raw", "u_str", "u_dgr", "u_seq", "nl", "p_raw", "p_dgr", "mptcp",
              "sctp", "tipc", "xdp", "v_str", "v_dgr", "icmp6", "???", "u_seqpacket"}
_SS_USER = re.compile(r'\("((?:[^"\\]|\\.)*)",pid=(\d+),fd=(\d+)\)')


def _ss_endpoint(text: str, source: str, lineno: int) -> tuple[IPAddress, int | None, str | None]:
    addr, sep, port = text.rpartition(":")
    if not sep:
        raise _err(source, f"expected ADDRESS:PORT, got {text!r}", line=lineno)
    dev = None
    if "%" in addr:
        addr, _, dev = addr.partition("%")
    addr = addr.strip("[]")
    ip: IPAddress = ipaddress.IPv6Address("::") if addr == "*" else _addr(addr, source, "address", lineno)
    return ip, (None if port == "*" else _int(port, source, "port", lineno)), dev


def parse_ss(text: str, source: str) -> tuple[Socket, ...]:
    """``ss -tuanpe`` (also ``-O``, ``-H``, ``-tanp``, ``-peaonmi``): TCP and UDP sockets.

    Continuation lines (``-m``, ``-i`` details) and other socket kinds (unix, netlink) are
    skipped. ``*`` as a local address is the IPv6 wildcard ``::`` (how ss prints it).
    """
    sockets: list[Socket] = []
    has_netid: bool | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw[0] in " \t":
            continue
        words = raw.split()
        if words[0] in ("Netid", "State"):
            has_netid = words[0] == "Netid"
            continue
        netid_here = words[0] in _SS_NETIDS if has_netid is None else has_netid
        if netid_here:
            netid, words = words[0], words[1:]
        else:
            netid = "udp" if words[0] == "UNCONN" else "tcp"
        if netid not in ("tcp", "udp"):
            continue
        if len(words) < 5:
            raise _err(source, "expected State Recv-Q Send-Q Local:Port Peer:Port", line=lineno)
        state = words[0]
        local, lport, dev = _ss_endpoint(words[3], source, lineno)
        peer, rport, _ = _ss_endpoint(words[4], source, lineno)
        rest = " ".join(words[5:])
        procs = tuple(Process(pid=int(m.group(2)), name=m.group(1))
                      for m in _SS_USER.finditer(rest))
        extra: dict[str, str] = {}
        for w in words[5:]:
            key, sep, val = w.partition(":")
            if sep and key in ("ino", "uid", "v6only", "fwmark", "mark"):
                extra[key] = val
        if lport is None:
            raise _err(source, "socket without a local port", line=lineno)
        remote = None if peer.is_unspecified and rport is None else peer
        mark = extra.get("fwmark", extra.get("mark"))
        sockets.append(Socket(
            proto=netid,
            family=Family.of(local),
            state=state,
            local=local,
            local_port=lport,
            remote=remote,
            remote_port=rport,
            bound_dev=dev,
            v6only=(extra["v6only"] == "1") if "v6only" in extra else None,
            uid=_int(extra["uid"], source, "uid", lineno) if "uid" in extra else None,
            inode=_int(extra["ino"], source, "ino", lineno) if "ino" in extra else None,
            mark=_int(mark, source, "fwmark", lineno) if mark is not None else None,
            processes=procs,
        ))
    return tuple(sockets)


# -- conntrack -----------------------------------------------------------------------------------

_CT_TUPLE_KEYS = {"src", "dst", "sport", "dport", "type", "code", "id"}


def _ct_tuple(d: dict[str, str], source: str, lineno: int) -> CtTuple:
    if "src" not in d or "dst" not in d:
        raise _err(source, "conntrack tuple without src/dst", line=lineno)

    def num(key: str) -> int | None:
        return _int(d[key], source, key, lineno) if key in d else None

    return CtTuple(
        src=_addr(d["src"], source, "src", lineno),
        dst=_addr(d["dst"], source, "dst", lineno),
        sport=num("sport"), dport=num("dport"),
        icmp_type=num("type"), icmp_code=num("code"), icmp_id=num("id"),
    )


def parse_conntrack(text: str, source: str) -> tuple[ConntrackEntry, ...]:
    """``conntrack -L -o extended`` (or plain ``-L``) lines.

    The tool prints only ASSURED/UNREPLIED/OFFLOAD; CONFIRMED is implied (the listing holds
    confirmed entries), SEEN_REPLY is the absence of UNREPLIED, and SRC_NAT/DST_NAT are set when
    the reply tuple is not the inverse of the original one.
    """
    entries: list[ConntrackEntry] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        words = raw.split()
        if not words or words[0].startswith(("conntrack", "#")):
            continue
        k = 0
        family: Family | None = None
        if words[0] in ("ipv4", "ipv6"):
            family = Family.IPV4 if words[0] == "ipv4" else Family.IPV6
            k = 2
        if len(words) < k + 3:
            raise _err(source, "expected 'l4name l4num timeout ...'", line=lineno)
        proto = _int(words[k + 1], source, "protocol number", lineno)
        timeout = _int(words[k + 2], source, "timeout", lineno)
        k += 3
        tcp_state = None
        if k < len(words) and "=" not in words[k] and not words[k].startswith("["):
            tcp_state = words[k]
            k += 1
        tuples: list[dict[str, str]] = []
        flags: list[str] = []
        mark = zone = 0
        for w in words[k:]:
            if w.startswith("[") and w.endswith("]"):
                flags.append(w[1:-1])
                continue
            key, sep, val = w.partition("=")
            if not sep:
                continue
            if key == "src" and (not tuples or "src" in tuples[-1]):
                tuples.append({})
            if key in _CT_TUPLE_KEYS and tuples and (key != "id" or len(tuples[-1]) > 2):
                tuples[-1].setdefault(key, val)
            elif key == "mark":
                mark = _int(val, source, "mark", lineno)
            elif key == "zone":
                zone = _int(val, source, "zone", lineno)
        if len(tuples) != 2:
            raise _err(source, "expected an original and a reply tuple", line=lineno)
        orig = _ct_tuple(tuples[0], source, lineno)
        reply = _ct_tuple(tuples[1], source, lineno)
        status = [f for f in flags if f in ("ASSURED", "UNREPLIED", "OFFLOAD", "HW_OFFLOAD")]
        if "UNREPLIED" not in status:
            status.append("SEEN_REPLY")
        status.append("CONFIRMED")
        if reply.dst != orig.src or reply.dport != orig.sport:
            status.append("SRC_NAT")
        if reply.src != orig.dst or reply.sport != orig.dport:
            status.append("DST_NAT")
        entries.append(ConntrackEntry(
            family=family or Family.of(orig.src),
            proto=proto,
            orig=orig,
            reply=reply,
            status=tuple(status),
            tcp_state=tcp_state if proto == 6 else None,
            mark=mark,
            zone=zone,
            timeout=timeout,
        ))
    return tuple(entries)


# -- sysctl --------------------------------------------------------------------------------------


def parse_sysctl(text: str, source: str, *, prefix: str = "net.") -> dict[str, str]:
    """``sysctl -a`` (``key = value``); keeps keys under ``prefix`` (all when empty)."""
    out: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.startswith(("sysctl:", "#")):
            continue
        key, sep, value = raw.partition("=")
        if not sep:
            raise _err(source, f"expected 'key = value', got {raw.strip()[:60]!r}", line=lineno)
        key = key.strip().replace("/", ".")
        if key.startswith(prefix):
            out[key] = value.strip()
    return out


# -- ipset ---------------------------------------------------------------------------------------


def parse_ipset_save(text: str, source: str) -> tuple[IpSet, ...]:
    """``ipset save``: ``create NAME TYPE [family inet] opts`` and ``add NAME MEMBER [opts]``."""
    order: list[str] = []
    info: dict[str, tuple[str, Family | None, tuple[str, ...]]] = {}
    members: dict[str, list[str]] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        words = raw.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] in ("create", "-N", "-exist") and len(words) >= 3:
            name, typ, opts = words[1], words[2], words[3:]
            fam: Family | None = None
            if "family" in opts:
                i = opts.index("family")
                fam = {"inet": Family.IPV4, "inet6": Family.IPV6}.get(
                    opts[i + 1] if i + 1 < len(opts) else "")
                opts = opts[:i] + opts[i + 2:]
            info[name] = (typ, fam, tuple(opts))
            members.setdefault(name, [])
            order.append(name)
        elif words[0] in ("add", "-A") and len(words) >= 3:
            if words[1] not in info:
                raise _err(source, f"add to set {words[1]!r} before its create line", line=lineno)
            members[words[1]].append(" ".join(words[2:]))
        else:
            raise _err(source, f"expected a create or add line, got {raw.strip()[:60]!r}",
                       line=lineno)
    return tuple(IpSet(name=n, type=info[n][0], family=info[n][1], members=tuple(members[n]),
                       options=info[n][2]) for n in order)


# -- nft -j / nft text: overview counts for `journey show` ----------------------------------------


@dataclass(frozen=True, slots=True)
class NftTableSummary:
    family: str
    name: str
    chains: int
    rules: int
    sets: int
    base_chains: tuple[str, ...]  # "input (filter, prio 10, policy accept)"


def summarize_nft_json(text: str, source: str) -> tuple[NftTableSummary, ...]:
    """Tables with chain/rule/set counts from ``nft -j list ruleset``."""
    data = load_json(text, source)
    items = data.get("nftables") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise _err(source, "expected {\"nftables\": [...]}", field="nftables")
    return _summarize(next(iter(o.items())) for o in items if isinstance(o, dict) and o)


def summarize_nft_text(text: str, source: str) -> tuple[NftTableSummary, ...]:
    """Tables with chain/rule/set counts from ``nft list ruleset`` text."""
    objs: list[tuple[str, dict[str, Any]]] = []
    table: tuple[str, str] | None = None
    chain: str | None = None
    depth = 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split()
        if depth == 0 and words[0] == "table" and len(words) >= 3:
            table = (words[1], words[2])
            objs.append(("table", {"family": table[0], "name": table[1]}))
        elif depth == 1 and table and words[0] == "chain" and len(words) >= 2:
            chain = words[1]
            objs.append(("chain", {"family": table[0], "table": table[1], "name": chain}))
        elif depth == 1 and table and words[0] in ("set", "map") and len(words) >= 2:
            objs.append(("set", {"family": table[0], "table": table[1], "name": words[1]}))
        elif depth == 2 and table and chain and words[0] == "type" and "hook" in words:
            d = objs[-1][1] if objs and objs[-1][0] == "chain" else {}
            at = words.index("hook") + 1
            d["hook"] = words[at] if at < len(words) else "?"
            d["type"] = words[1]
            m = re.search(r"\bpriority\s+([^;]+);", line)
            if m:
                d["prio"] = m.group(1).strip()
            m = re.search(r"\bpolicy\s+(\w+)", line)
            if m:
                d["policy"] = m.group(1)
        elif depth == 2 and table and chain and line != "}":
            objs.append(("rule", {"family": table[0], "table": table[1], "chain": chain}))
        depth += line.count("{") - line.count("}")
        if depth <= 1:
            chain = None
    return _summarize(iter(objs))


def _summarize(objs: Iterable[tuple[str, Any]]) -> tuple[NftTableSummary, ...]:
    order: list[tuple[str, str]] = []
    counts: dict[tuple[str, str], list[int]] = {}
    bases: dict[tuple[str, str], list[str]] = {}
    for kind, o in objs:
        if not isinstance(o, dict):
            continue
        if kind == "table":
            key = (str(o.get("family")), str(o.get("name")))
            order.append(key)
            counts[key] = [0, 0, 0]
            bases[key] = []
            continue
        key = (str(o.get("family")), str(o.get("table")))
        if key not in counts:
            continue
        if kind == "chain":
            counts[key][0] += 1
            if "hook" in o:
                bases[key].append(f"{o.get('name')} ({o.get('type')} {o.get('hook')}, prio "
                                  f"{o.get('prio')}, policy {o.get('policy', 'accept')})")
        elif kind == "rule":
            counts[key][1] += 1
        elif kind in ("set", "map"):
            counts[key][2] += 1
    return tuple(NftTableSummary(f, n, counts[(f, n)][0], counts[(f, n)][1], counts[(f, n)][2],
                                 tuple(bases[(f, n)])) for f, n in order)


Parser = Callable[[str, str], Any]
