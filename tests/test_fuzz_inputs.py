"""Deterministic mutation fuzzing of every input parser, starting from the repo's real fixtures.

The contract (product spec): bad input gives a clear error naming the file and the line or
field, never a traceback. So each call either returns a value of the right type or raises
``journey.errors.JourneyError`` (or a subclass) whose ``text()`` names the file and whose
``line``/``field`` (or, for a packet spec, ``column``) says where. Any other exception is a bug.

Seeded ``random`` only (no hypothesis): every run tries the same inputs. ``JOURNEY_FUZZ_SCALE``
multiplies the number of cases (default 1, a few seconds in all) for a longer local hunt.
"""

from __future__ import annotations

import copy
import gzip
import io
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from journey.errors import CaptureError, JourneyError, PacketSpecError
from journey.model.family import Family
from journey.model.packet import Packet
from journey.model.ruleset import Backend, IptablesDump
from journey.model.snapshot import HostSnapshot
from journey.snapshot import textparsers as tp

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
CAPTURES = ROOT / "captures"
SCALE = max(1, int(os.environ.get("JOURNEY_FUZZ_SCALE", "1")))

# -- mutations ---------------------------------------------------------------------------------

TOKENS = ["", "-", "!", "'", '"', "\x00", "\x7f", "é", "\u202e", "\U0001d4e7", "0", "-1",
          "-99999", "99999999999999999999999", "4294967296", "0x", "1e400", "NaN", "[", "]",
          "{", "}", ":", "/", "::", "1.2.3.4/99", "::1/200", "300.1.1.1", "eth0", "table",
          "via", "dev", "*", "COMMIT", ":X ACCEPT [0:0]", "-A", "-m", "--dport", "lookup",
          "from", "to", "all", "null", "true", "src=", "dport=", "=", "\\"]
INSERTS = ["\x00", "\x00\x01\x02\xff", "\x7f", "\x1b[31m", "\r", "\t", "\ufeff", "\u2028",
           "\u00a0", "Ω", "é", '"', "'", "99999999999999999999999", "-1", "-2147483649",
           "4294967296", "1e999", "\\"]
WEIRD: list[Any] = [None, True, False, 0, -1, -(2**63), 2**64, 10**30, 1.5, 1e308, "", "x",
                    "é\x00", "-1", "99999999999999999999", [], {}, [1], {"a": 1}, ["x", None]]


def mutate_text(text: str, rng: random.Random) -> str:
    """One random edit: truncate, flip bits, delete/duplicate/swap lines, replace a word,
    insert NUL/binary/unicode/huge or negative numbers, leave a quote open."""
    lines = text.split("\n")
    op = rng.randrange(10)
    if op == 0 and text:
        return text[: rng.randrange(len(text))]
    if op == 1 and text:
        b = bytearray(text.encode("utf-8"))
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        return b.decode("utf-8", "surrogateescape")
    if op == 2:
        del lines[rng.randrange(len(lines))]
    elif op == 3:
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
    elif op == 4:
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    elif op in (5, 6):
        i = rng.randrange(len(lines))
        words = lines[i].split(" ")
        words[rng.randrange(len(words))] = rng.choice(TOKENS)
        lines[i] = " ".join(words)
    elif op == 7:
        i = rng.randrange(len(lines))
        lines[i] += rng.choice([' "abc', " 'x", '"', " \"a b"])
    else:
        p = rng.randrange(len(text) + 1)
        return text[:p] + rng.choice(INSERTS) + text[p:]
    return "\n".join(lines)


def _paths(obj: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if path:
        yield path
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*path, i))


def mutate_json(data: Any, rng: random.Random, paths: list[tuple[Any, ...]] | None = None) -> Any:
    """One structural edit: delete a key, change a value's type, huge/negative numbers,
    mangle a string."""
    if paths is None:
        paths = list(_paths(data))
    if not paths:
        return copy.deepcopy(rng.choice(WEIRD))
    path = rng.choice(paths)
    data = _copy_along(data, path)
    parent = data
    for k in path[:-1]:
        parent = parent[k]
    last = path[-1]
    op = rng.randrange(3)
    if op == 0 and isinstance(parent, dict):
        del parent[last]
    elif op == 1 and isinstance(parent[last], str) and parent[last]:
        parent[last] = mutate_text(parent[last], rng)
    else:
        parent[last] = copy.deepcopy(rng.choice(WEIRD))
    return data


def _copy_along(data: Any, path: tuple[Any, ...]) -> Any:
    """Copy only the containers on ``path`` (the rest is shared, never modified)."""
    top = copy.copy(data)
    node = top
    for k in path[:-1]:
        child = copy.copy(node[k])
        node[k] = child
        node = child
    return top


def mutate_bytes(data: bytes, rng: random.Random, header: int = 0) -> bytes:
    b = bytearray(data)
    op = rng.randrange(4)
    if op == 0:
        return bytes(b[: rng.randrange(len(b))])
    if op == 1 and header:
        for _ in range(rng.randint(1, 3)):
            b[rng.randrange(min(header, len(b)))] = rng.randrange(256)
        return bytes(b)
    if op == 2:
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        return bytes(b)
    p = rng.randrange(len(b) + 1)
    return bytes(b[:p]) + rng.randbytes(rng.randint(1, 16)) + bytes(b[p:])


# -- the contract ------------------------------------------------------------------------------

WHOLE_FILE = re.compile(r"empty|gzip|not UTF-8|magic|too short|cut short|not a journey snapshot|"
                        r"byte \d+|no such|not a folder|binary data|expected a JSON list")


class Bugs:
    """Collects contract violations (one example per kind) so one test reports them all."""

    def __init__(self) -> None:
        self.found: dict[str, str] = {}
        self.calls = 0
        self.errors = 0

    def check(self, label: str, call: Callable[[], object], expect: type | tuple[type, ...],
              file: str | None, sample: object = None) -> object | None:
        self.calls += 1
        try:
            value = call()
        except RecursionError as exc:  # not a user error: a bug (checked before the others)
            self._bug(label, exc, sample)
            return None
        except JourneyError as exc:
            self.errors += 1
            text = exc.text()
            if "\n" in text.strip():
                self._bug(label, f"multi-line message {text!r}", sample)
            if file is not None and file not in text:
                self._bug(label, f"message does not name {file!r}: {text!r}", sample)
            where = (exc.line is not None or exc.field is not None
                     or (isinstance(exc, PacketSpecError) and exc.column is not None)
                     or isinstance(exc, CaptureError) or bool(WHOLE_FILE.search(exc.message)))
            if not where:
                self._bug(label, f"no line or field: {text!r}", sample)
            return None
        except Exception as exc:  # anything else is what this test hunts
            self._bug(label, exc, sample)
            return None
        if not isinstance(value, expect):
            self._bug(label, f"returned {type(value).__name__}, expected {expect}", sample)
        return value

    def _bug(self, label: str, what: object, sample: object) -> None:
        if isinstance(what, BaseException):
            tb = what.__traceback__
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            at = f"{Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno}" if tb else "?"
            key = f"{label}: {type(what).__name__} at {at}"
            what = f"{type(what).__name__}: {what}"
        else:
            key = f"{label}: {str(what)[:60]}"
        shown = repr(sample)
        self.found.setdefault(key, f"{what}\n    input: {shown[:300]}{'...' if len(shown) > 300 else ''}")

    def assert_none(self) -> None:
        assert self.calls > 0
        assert not self.found, "contract violations:\n" + "\n".join(
            f"- {k}\n    {v}" for k, v in sorted(self.found.items()))


@pytest.fixture
def bugs() -> Bugs:
    return Bugs()


# -- iptables-save and nft -j ------------------------------------------------------------------

IPTABLES = sorted((DATA / "iptables").glob("*.txt"))
NFT = sorted((DATA / "nft").glob("*.json"))


@pytest.mark.parametrize("path", IPTABLES, ids=lambda p: p.name)
def test_fuzz_iptables_save(path: Path, bugs: Bugs) -> None:
    from journey.snapshot.iptables_save import parse_iptables_save, parse_iptables_save_bytes

    text = path.read_text()
    family = Family.IPV6 if path.name.startswith("ip6") or "v6" in path.name else Family.IPV4
    rng = random.Random(f"ipt-{path.name}")
    src = f"fz/{path.name}"
    for _ in range(150 * SCALE):
        m = mutate_text(text, rng)
        bugs.check("iptables-save", partial(parse_iptables_save, m, source=src, family=family,
                                            backend=Backend.NFT), IptablesDump, src, m)
    for _ in range(20 * SCALE):
        raw = mutate_bytes(text.encode(), rng)
        bugs.check("iptables-save bytes", partial(parse_iptables_save_bytes, raw, source=src,
                                                  family=family, backend=Backend.LEGACY),
                   IptablesDump, src, raw)
    bugs.assert_none()


@pytest.mark.parametrize("path", NFT, ids=lambda p: p.name)
def test_fuzz_nft_json(path: Path, bugs: Bugs) -> None:
    from journey.model.nft import NftRuleset
    from journey.snapshot.nft_json import parse_nft_json

    text = path.read_text()
    data = json.loads(text)
    paths = list(_paths(data))
    rng = random.Random(f"nft-{path.name}")
    src = f"fz/{path.name}"
    for _ in range(120 * SCALE):
        m = (mutate_text(text, rng) if rng.random() < 0.35
             else json.dumps(mutate_json(data, rng, paths)))
        bugs.check("nft -j", partial(parse_nft_json, m, source=src), NftRuleset, src, m)
    bugs.assert_none()


# -- the text parsers (ip, ss, conntrack, sysctl, ipset, nft summaries) ------------------------

H = "importdir/host1/"
S = "sosreport/sos-host1/sos_commands/"
TEXT_PARSERS: list[tuple[str, Callable[[str, str], object], type, list[str]]] = [
    ("ip addr", tp.parse_ip_addr, tuple,
     [H + "ip_addr.json", S + "networking/ip_-d_address", S + "networking/ip_-o_addr",
      S + "networking/ip_-s_-d_link"]),
    ("ip route", lambda t, s: tp.parse_ip_route(t, s, None), tuple,
     [H + "ip_route.json", S + "networking/ip_route_show_table_all"]),
    ("ip -6 route", lambda t, s: tp.parse_ip_route(t, s, Family.IPV6), tuple,
     [H + "ip6_route.json", S + "networking/ip_-6_route_show_table_all"]),
    ("ip rule", lambda t, s: tp.parse_ip_rule(t, s, Family.IPV4), tuple,
     [H + "ip_rule.json", S + "networking/ip_-4_rule_list"]),
    ("ip -6 rule", lambda t, s: tp.parse_ip_rule(t, s, Family.IPV6), tuple,
     [H + "ip6_rule.json", S + "networking/ip_-6_rule_list"]),
    ("ip neigh", tp.parse_ip_neigh, tuple,
     [H + "ip_neigh.json", S + "networking/ip_-s_-s_neigh_show",
      S + "networking/ip_neigh_show_nud_noarp"]),
    ("ss", tp.parse_ss, tuple, [H + "ss.txt", S + "networking/ss_-peaonmi"]),
    ("conntrack", tp.parse_conntrack, tuple,
     [H + "conntrack.txt", S + "conntrack/conntrack_-L_-o_extended"]),
    ("sysctl", tp.parse_sysctl, dict, [S + "kernel/sysctl_-a"]),
    ("ipset", tp.parse_ipset_save, tuple, [H + "ipset.txt"]),
    ("nft summary", tp.summarize_nft_json, tuple, [H + "nft.json"]),
    ("nft text summary", tp.summarize_nft_text, tuple, [S + "firewall_tables/nft_list_ruleset"]),
]


@pytest.mark.parametrize(("label", "parse", "expect", "files"), TEXT_PARSERS,
                         ids=[t[0] for t in TEXT_PARSERS])
def test_fuzz_text_parsers(label: str, parse: Callable[[str, str], object], expect: type,
                           files: list[str], bugs: Bugs) -> None:
    rng = random.Random(f"text-{label}")
    for rel in files:
        text = (DATA / rel).read_text()
        if label == "sysctl":  # 45 kB: a slice keeps it fast and still covers every shape
            text = "\n".join(text.splitlines()[:300])
        data = json.loads(text) if text.lstrip()[:1] in ("[", "{") else None
        paths = list(_paths(data)) if data is not None else []
        src = f"fz/{Path(rel).name}"
        for _ in range(80 * SCALE):
            if data is not None and rng.random() < 0.6:
                m = json.dumps(mutate_json(data, rng, paths))
            else:
                m = mutate_text(text, rng)
            bugs.check(label, partial(parse, m, src), expect, src, m)
    bugs.assert_none()


# -- import_dir: one file of a real folder mutated at a time -----------------------------------

def _files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("folder", ["importdir/host1", "sosreport/sos-host1"])
def test_fuzz_import_dir(folder: str, tmp_path: Path, bugs: Bugs) -> None:
    from journey.snapshot.fileio import load_snapshot, save_snapshot
    from journey.snapshot.importdir import import_dir

    src_root = DATA / folder
    root = tmp_path / Path(folder).name
    shutil.copytree(src_root, root)
    rng = random.Random(f"importdir-{folder}")
    files = _files_under(root)
    n = 0
    for k in range(60 * SCALE):
        target = files[k % len(files)]
        rel = str(target.relative_to(root))
        original = target.read_bytes()
        text = original.decode("utf-8")
        if rng.random() < 0.15:
            mutated = mutate_bytes(original, rng)
        elif text.lstrip()[:1] in ("[", "{") and rng.random() < 0.6:
            mutated = json.dumps(mutate_json(json.loads(text), rng)).encode()
        else:
            mutated = mutate_text(text, rng).encode("utf-8", "surrogateescape")
        target.write_bytes(mutated)
        try:
            snap = bugs.check(f"import_dir {folder}", partial(import_dir, root), HostSnapshot,
                              rel, (rel, mutated))
            if isinstance(snap, HostSnapshot):
                # what was imported must save and load back (nothing lost on the way)
                n += 1
                out = tmp_path / f"out{n}.json.gz"
                bugs.check(f"import_dir {folder} -> save", partial(save_snapshot, snap, out),
                           type(None), None, (rel, mutated))
                if out.exists():
                    bugs.check(f"import_dir {folder} -> load", partial(load_snapshot, out),
                               HostSnapshot, None, (rel, mutated))
        finally:
            target.write_bytes(original)
    bugs.assert_none()


def test_import_dir_lone_surrogate_saves_and_loads(tmp_path: Path) -> None:
    """Found by the fuzzer: valid JSON with a "\\udcba" escape imported, then save crashed."""
    from journey.snapshot.fileio import load_snapshot, save_snapshot
    from journey.snapshot.importdir import import_dir

    root = tmp_path / "host1"
    shutil.copytree(DATA / "importdir" / "host1", root)
    (root / "ip_neigh.json").write_text(
        '[{"dst": "10.77.0.2", "dev": "h0", "lladdr": "02:00:\\udcba", "state": ["STALE"]}]')
    snap = import_dir(root)
    assert snap.neighbours[0].lladdr == "02:00:\udcba"
    for name in ("s.json", "s.json.gz"):
        save_snapshot(snap, tmp_path / name)
        assert load_snapshot(tmp_path / name).neighbours == snap.neighbours


# -- snapshot files ----------------------------------------------------------------------------

SNAPSHOTS = sorted(CAPTURES.glob("*.json.gz"))


@pytest.mark.parametrize("path", SNAPSHOTS, ids=lambda p: p.name)
def test_fuzz_load_snapshot(path: Path, tmp_path: Path, bugs: Bugs) -> None:
    from rich.console import Console

    from journey.render.show import print_show
    from journey.snapshot.fileio import load_snapshot

    raw = gzip.decompress(path.read_bytes())
    text = raw.decode()
    doc = json.loads(text)
    paths = list(_paths(doc))
    rng = random.Random(f"snap-{path.name}")
    special: list[Any] = [
        {**doc, "version": 2}, {**doc, "version": "1"}, {**doc, "version": -1},
        {**doc, "version": 2**70}, {**doc, "format": "other"}, {k: v for k, v in doc.items()
                                                              if k != "snapshot"},
        {**doc, "snapshot": []}, [], "x", 1, None,
    ]
    shown = 0
    for k in range(70 * SCALE):
        if k < len(special):
            payload = json.dumps(special[k]).encode()
        elif rng.random() < 0.3:
            payload = mutate_text(text, rng).encode("utf-8", "surrogateescape")
        else:
            payload = json.dumps(mutate_json(doc, rng, paths), ensure_ascii=rng.random() < 0.5
                                 ).encode("utf-8", "surrogateescape")
        gz = rng.random() < 0.5
        name = tmp_path / (f"s{k}.json.gz" if gz else f"s{k}.json")
        name.write_bytes(gzip.compress(payload, mtime=0) if gz else payload)
        snap = bugs.check("load_snapshot", partial(load_snapshot, name), HostSnapshot,
                          str(name), payload[:200])
        if isinstance(snap, HostSnapshot) and shown < 10:
            # `journey show` of what loaded must not crash either
            shown += 1
            console = Console(file=io.StringIO(), width=120, color_system=None)
            bugs.check("show", partial(print_show, snap, console), type(None), None,
                       payload[:200])
    for k in range(25 * SCALE):  # damage the compressed bytes themselves
        name = tmp_path / f"z{k}.json.gz"
        name.write_bytes(mutate_bytes(path.read_bytes(), rng, header=10))
        bugs.check("load_snapshot gz", partial(load_snapshot, name), HostSnapshot, str(name))
    bugs.assert_none()


# -- captures ----------------------------------------------------------------------------------

PCAPS = sorted(CAPTURES.glob("*.pcap"))


def _check_capture(bugs: Bugs, path: Path, label: str, sample: object) -> None:
    from journey.packets.pcap import Capture, dissect_text, frame_to_packet, index_capture

    cap = bugs.check(label, partial(index_capture, path), Capture, str(path), sample)
    if isinstance(cap, Capture):
        for frame in cap.frames[:40]:
            bugs.check(f"{label} frame_to_packet", partial(frame_to_packet, cap, frame),
                       Packet, None, sample)
        for frame in cap.frames[:3]:
            bugs.check(f"{label} dissect_text", partial(dissect_text, cap, frame), str,
                       None, sample)


def _first_record_caplen(data: bytes, value: int) -> bytes:
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    return data[:32] + struct.pack(endian + "I", value) + data[36:]


@pytest.mark.parametrize("path", PCAPS, ids=lambda p: p.name)
def test_fuzz_pcap(path: Path, tmp_path: Path, bugs: Bugs) -> None:
    data = path.read_bytes()
    rng = random.Random(f"pcap-{path.name}")
    fixed = [b"", data[:11], data[:23], data[:30], b"\x00\x00\x00\x00" + data[4:],
             b"\n\r\r\n" + data[4:], _first_record_caplen(data, 0xFFFFFFFF),
             _first_record_caplen(data, 0x3FFFFFF), _first_record_caplen(data, 0)]
    for k in range(40 * SCALE):
        mutated = fixed[k] if k < len(fixed) else mutate_bytes(data, rng, header=40)
        f = tmp_path / f"c{k}.pcap"
        f.write_bytes(mutated)
        _check_capture(bugs, f, "index_capture", mutated[:64])
    bugs.assert_none()


def test_fuzz_pcapng(tmp_path: Path, bugs: Bugs) -> None:
    pytest.importorskip("scapy.layers.l2")
    from scapy.utils import PcapNgWriter, rdpcap

    src = tmp_path / "src.pcapng"
    writer = PcapNgWriter(str(src))
    for pkt in rdpcap(str(CAPTURES / "web01.pcap"))[:20]:
        writer.write(pkt)
    writer.close()
    data = src.read_bytes()
    rng = random.Random("pcapng")
    # blocks whose length field is too small for their body (the body is read anyway)
    shb_len = struct.unpack_from("<I", data, 4)[0]
    idb_end = shb_len + struct.unpack_from("<I", data, shb_len + 4)[0]
    fixed = [data[:8] + b"\x00\x00\x00\x00" + data[12:]]  # byte-order magic
    for btype in (1, 2, 3, 6):  # a block too short for its fixed fields, last in the file
        short = struct.pack("<III", btype, 12, 12)
        fixed += [data[:shb_len] + short, data[:idb_end] + short,
                  data[:idb_end] + short + data[idb_end:]]
    for k in range(40 * SCALE):
        mutated = fixed[k] if k < len(fixed) else mutate_bytes(data, rng, header=120)
        f = tmp_path / f"c{k}.pcapng"
        f.write_bytes(mutated)
        _check_capture(bugs, f, "index_capture pcapng", mutated[:64])
    bugs.assert_none()


# -- packet specs ------------------------------------------------------------------------------

SPECS = [
    "in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:80 flags S",
    "tcp 10.0.0.1 > 10.0.0.2:22 flags PA mark 0x10 tos 4 ttl 1 len 1500 df",
    "local uid 1000 udp :5353 > 224.0.0.251:5353",
    "local tcp > 8.8.8.8:443",
    "in br0 icmp 10.1.1.1 > 10.1.1.2 type echo-request code 0 id 7",
    "icmpv6 2001:db8::1 > 2001:db8::2 type 128",
    "in eth1 udp [2001:db8::1]:53 > [2001:db8::2]:5353 hlim 3",
    "proto 47 192.0.2.1 > 192.0.2.2",
    "sctp 192.0.2.1:9 > 192.0.2.2:9 vlan 10 mac aa:bb:cc:dd:ee:ff smac 02:00:00:00:00:01",
    "in eth0 udp 10.0.0.1:1 > 10.0.0.2:2 frag 8 mf badsum ihl 4 version 5",
    "tcp 10.0.0.1 > 10.0.0.2:80 flags none",
]
SPEC_WORDS = ["in", "local", "uid", "tcp", "udp", "icmp", "icmpv6", "sctp", "proto", ">", ">>",
              ":", "[", "]", "[::1]", "[::1]:", "::", ":80", ":99999", "10.0.0.1:", "10.0.0.1:-1",
              "10.0.0.1:0x50", "1.2.3.4:5:6", "flags", "SS", "XYZ", "type", "code", "id", "mark",
              "tos", "ttl", "hlim", "len", "df", "mac", "smac", "vlan", "frag", "mf", "badsum",
              "ihl", "version", "0", "-1", "0x", "0xffffffffffffffffff", "1e9", "é", "\x00",
              "echo-request", "nope", "'", '"', "proto", "300", "256", "65536", "2**8",
              "fe80::1%eth0", "1.2.3.4/24"]


def mutate_spec(spec: str, rng: random.Random) -> str:
    words = spec.split()
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(6)
        i = rng.randrange(len(words)) if words else 0
        if op == 0 and words:
            words[i] = rng.choice(SPEC_WORDS)
        elif op == 1 and words:
            del words[i]
        elif op == 2:
            words.insert(i, rng.choice(SPEC_WORDS))
        elif op == 3 and words:
            words.insert(i, words[i])
        elif op == 4 and len(words) > 1:
            j = rng.randrange(len(words))
            words[i], words[j] = words[j], words[i]
        elif words:
            w = words[i]
            words[i] = w[: rng.randrange(len(w) + 1)] + rng.choice(["", "é", "\x00", '"', "9"])
    text = " ".join(words)
    if rng.random() < 0.1:
        text = text[: rng.randrange(len(text) + 1)]
    return text


def _respec(pkt: Packet) -> Packet:
    from journey.packets.spec import format_spec, parse_spec

    return parse_spec(format_spec(pkt))


def test_fuzz_packet_spec(bugs: Bugs) -> None:
    from journey.packets.spec import format_spec, parse_spec

    for spec in SPECS:  # the seeds themselves are valid
        assert isinstance(parse_spec(spec), Packet), spec
    rng = random.Random("spec")
    for _ in range(1500 * SCALE):
        m = mutate_spec(rng.choice(SPECS), rng)
        pkt = bugs.check("parse_spec", partial(parse_spec, m), Packet, None, m)
        if isinstance(pkt, Packet):  # documented round trip
            again = bugs.check("parse_spec(format_spec)", partial(_respec, pkt),
                               Packet, None, m)
            if again is not None and again != pkt:
                bugs._bug("format_spec round trip", f"{format_spec(pkt)!r} parses differently", m)
    for bad in ["", "   ", "tcp", ">", "tcp >", "'", "\x00", "é" * 1000]:
        bugs.check("parse_spec", partial(parse_spec, bad), Packet, None, bad)
    bugs.assert_none()


# -- through the CLI ---------------------------------------------------------------------------

def _journey(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100"}
    return subprocess.run([sys.executable, "-m", "journey", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=60, check=False)


def _assert_clean_error(r: subprocess.CompletedProcess[str], *names: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for name in names:
        assert name in lines[0], (name, lines[0])


def test_cli_bad_inputs(tmp_path: Path) -> None:
    good = CAPTURES / "web01.json.gz"
    bad_snap = tmp_path / "bad.json.gz"
    bad_snap.write_bytes(gzip.compress(b'{"format": "journey.snapshot", "version": 1, '
                                       b'"snapshot": {"interfaces": 3}}'))
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes(good.read_bytes()[:3000])

    r = _journey("show", str(bad_snap), cwd=tmp_path)
    _assert_clean_error(r, str(bad_snap), "snapshot")
    r = _journey("show", str(cut), cwd=tmp_path)
    _assert_clean_error(r, str(cut))
    r = _journey("trace", str(cut), "tcp 10.0.0.1:1 > 10.0.0.2:80", cwd=tmp_path)
    _assert_clean_error(r, str(cut))
    r = _journey("trace", str(good), "tcp 10.0.0.1:1 > 10.0.0.2:99999", cwd=tmp_path)
    _assert_clean_error(r, "99999")
    packets = tmp_path / "pk.txt"
    packets.write_bytes(b"tcp 10.0.0.1:1 > 10.0.0.2:80\n\xff\xfe bad\n")
    r = _journey("trace", str(good), "--packets", str(packets), cwd=tmp_path)
    _assert_clean_error(r, str(packets))

    # a folder with one damaged file: the error names it, and -o never overwrites
    folder = tmp_path / "host1"
    shutil.copytree(DATA / "importdir" / "host1", folder)
    (folder / "ip_route.json").write_text('[{"dst": "10.0.0.0/99", "dev": "eth0"}]')
    out = tmp_path / "out.json.gz"
    r = _journey("snapshot", "--from-dir", str(folder), "-o", str(out), cwd=tmp_path)
    _assert_clean_error(r, "ip_route.json", "[0].dst")
    assert not out.exists()
    out.write_bytes(b"precious")
    r = _journey("snapshot", "--from-dir", str(DATA / "importdir" / "host1"), "-o", str(out),
                 cwd=tmp_path)
    _assert_clean_error(r, str(out), "exists")
    assert out.read_bytes() == b"precious"
    r = _journey("snapshot", "--from-dir", str(folder), "-o", str(out), "--force", cwd=tmp_path)
    _assert_clean_error(r, "ip_route.json")
    assert out.read_bytes() == b"precious"  # a failed import leaves the old file alone
