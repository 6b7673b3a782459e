"""Build a ``HostSnapshot`` from a folder of raw command outputs or from a sos report.

Two layouts are recognised:

* journey's flat folder: one file per command, found by name (case, ``-``/``_`` and the
  ``.json``/``.txt``/``.out`` extension do not matter; see ``FLAT_NAMES``). ``ip`` outputs may be
  JSON (``ip -j``) or text; the parser is chosen by content.
* a sos report (a folder with ``sos_commands/``): sos stores text outputs under mangled command
  names (``sos_commands/networking/ip_-d_address``, ``ip_route_show_table_all``, ...;
  see ``SOS_NAMES``).

A part whose file is absent is recorded in ``Provenance.parts`` as MISSING with the reason
``file not found: NAME``; a file that cannot be parsed raises ``SnapshotError`` (or
``RuleParseError`` for iptables dumps) naming the file and line.

Reads files only: no subprocess, no textual, no rich.
"""

from __future__ import annotations

import contextlib
import datetime
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from journey import __version__
from journey.errors import SnapshotError
from journey.model.family import Family
from journey.model.ruleset import Backend, IptablesDump
from journey.model.snapshot import (
    Address,
    ConntrackEntry,
    HostSnapshot,
    Interface,
    IpSet,
    Neighbour,
    PartState,
    PartStatus,
    PolicyRule,
    Provenance,
    RawDump,
    Route,
    Socket,
)
from journey.snapshot import textparsers as tp

# role -> accepted names in a flat folder, compared after ``_norm`` (lower case, extension
# dropped, runs of other characters turned into "_"). The first that exists wins.
FLAT_NAMES: dict[str, tuple[str, ...]] = {
    "addr": ("ip_addr", "ip_j_addr", "ip_j_d_addr", "ip_d_addr", "ip_address", "ip_d_address",
             "ip_a", "addr", "addresses"),
    "link": ("ip_link", "ip_j_link", "ip_d_link", "ip_j_d_link", "link", "links"),
    "route4": ("ip_route", "ip_j_route", "ip4_route", "ip_4_route", "ip_j_4_route", "route",
               "routes", "ip_route_show_table_all", "ip_j_route_show_table_all"),
    "route6": ("ip6_route", "ip_6_route", "ip_j_6_route", "route6", "routes6",
               "ip_6_route_show_table_all", "ip_j_6_route_show_table_all"),
    "rule4": ("ip_rule", "ip_j_rule", "ip4_rule", "ip_4_rule", "ip_j_4_rule", "rule", "rules",
              "ip_rule_list", "ip_4_rule_list"),
    "rule6": ("ip6_rule", "ip_6_rule", "ip_j_6_rule", "rule6", "rules6", "ip_6_rule_list"),
    "neigh": ("ip_neigh", "ip_j_neigh", "ip_neighbour", "ip_neighbor", "neigh", "neighbours",
              "ip_neigh_show"),
    "iptables-v4-nft": ("iptables_save", "iptables", "iptables_nft_save"),
    "iptables-v6-nft": ("ip6tables_save", "ip6tables", "ip6tables_nft_save"),
    "iptables-v4-legacy": ("iptables_legacy_save", "iptables_legacy"),
    "iptables-v6-legacy": ("ip6tables_legacy_save", "ip6tables_legacy"),
    "nft": ("nft", "nft_j", "nft_ruleset", "nft_list_ruleset", "nft_j_list_ruleset", "ruleset",
            "nftables"),
    "ss": ("ss", "ss_tuanpe", "ss_tuanpeo", "ss_tuanpeho", "ss_htuanpeo", "ss_tuanpeh",
           "ss_tulpn", "ss_tuanp", "ss_peaonmi", "sockets"),
    "conntrack": ("conntrack", "conntrack_l", "conntrack_l_o_extended", "conntrack_list"),
    "sysctl": ("sysctl", "sysctl_a", "sysctls"),
    "ipset": ("ipset", "ipset_save", "ipsets"),
    "tc": ("tc", "tc_qdisc", "tc_j_qdisc", "tc_j_qdisc_show", "tc_qdisc_show"),
    "hostname": ("hostname",),
    "uname": ("uname", "uname_a", "uname_r"),
}

# role -> candidate paths inside a sos report (sos's mangled command names), first wins
SOS_NAMES: dict[str, tuple[str, ...]] = {
    "addr": ("sos_commands/networking/ip_-d_address", "sos_commands/networking/ip_address",
             "sos_commands/networking/ip_addr", "sos_commands/networking/ip_-o_addr", "ip_addr"),
    "link": ("sos_commands/networking/ip_-s_-d_link", "sos_commands/networking/ip_-d_link",
             "sos_commands/networking/ip_link"),
    "route4": ("sos_commands/networking/ip_route_show_table_all",
               "sos_commands/networking/ip_-4_route_show_table_all", "ip_route"),
    "route6": ("sos_commands/networking/ip_-6_route_show_table_all",),
    "rule4": ("sos_commands/networking/ip_-4_rule_list", "sos_commands/networking/ip_rule_list",
              "sos_commands/networking/ip_-4_rule", "sos_commands/networking/ip_rule"),
    "rule6": ("sos_commands/networking/ip_-6_rule_list", "sos_commands/networking/ip_-6_rule"),
    "neigh": ("sos_commands/networking/ip_-s_-s_neigh_show",
              "sos_commands/networking/ip_neigh_show", "sos_commands/networking/ip_neigh"),
    "neigh_noarp": ("sos_commands/networking/ip_neigh_show_nud_noarp",),
    "iptables-v4-nft": ("iptables-save", "iptables-save.txt",
                        "sos_commands/firewall_tables/iptables-save",
                        "sos_commands/networking/iptables-save",
                        "sos_commands/firewall_tables/iptables-nft-save"),
    "iptables-v6-nft": ("ip6tables-save", "ip6tables-save.txt",
                        "sos_commands/firewall_tables/ip6tables-save",
                        "sos_commands/networking/ip6tables-save",
                        "sos_commands/firewall_tables/ip6tables-nft-save"),
    "iptables-v4-legacy": ("iptables-legacy-save", "iptables-legacy-save.txt",
                           "sos_commands/firewall_tables/iptables-legacy-save"),
    "iptables-v6-legacy": ("ip6tables-legacy-save", "ip6tables-legacy-save.txt",
                           "sos_commands/firewall_tables/ip6tables-legacy-save"),
    "nft": ("sos_commands/firewall_tables/nft_-j_list_ruleset",
            "sos_commands/firewall_tables/nft_list_ruleset",
            "sos_commands/firewall_tables/nft_-a_list_ruleset",
            "sos_commands/nftables/nft_list_ruleset"),
    "ss": ("sos_commands/networking/ss_-peaonmi", "sos_commands/networking/ss_-peaonm",
           "sos_commands/networking/ss_-peaon", "sos_commands/networking/ss_-tuanpe"),
    "conntrack": ("sos_commands/conntrack/conntrack_-L_-o_extended",
                  "sos_commands/networking/conntrack_-L_-o_extended",
                  "sos_commands/conntrack/conntrack_-L"),
    "sysctl": ("sos_commands/kernel/sysctl_-a", "sos_commands/networking/sysctl_-a"),
    "ipset": ("ipset-save", "ipset-save.txt", "sos_commands/firewall_tables/ipset_save",
              "sos_commands/networking/ipset_save"),
    "tc": ("sos_commands/networking/tc_-s_qdisc_show", "sos_commands/networking/tc_qdisc_show"),
    "hostname": ("hostname", "sos_commands/general/hostname", "sos_commands/host/hostname"),
    "uname": ("uname", "sos_commands/kernel/uname_-a"),
}

# What sos keeps instead of an iptables-save dump (not enough to simulate): named in the reason.
SOS_IPTABLES_LISTINGS = {
    "iptables-v4-nft": "sos_commands/firewall_tables/iptables_-vnxL",
    "iptables-v6-nft": "sos_commands/firewall_tables/ip6tables_-vnxL",
}

IPTABLES_ROLES: dict[str, tuple[Family, Backend, str]] = {
    "iptables-v4-nft": (Family.IPV4, Backend.NFT, "iptables-save"),
    "iptables-v6-nft": (Family.IPV6, Backend.NFT, "ip6tables-save"),
    "iptables-v4-legacy": (Family.IPV4, Backend.LEGACY, "iptables-legacy-save"),
    "iptables-v6-legacy": (Family.IPV6, Backend.LEGACY, "ip6tables-legacy-save"),
}

_EXTENSIONS = (".json", ".txt", ".out", ".log")


def _norm(name: str) -> str:
    low = name.lower()
    for ext in _EXTENSIONS:
        if low.endswith(ext):
            low = low[: -len(ext)]
            break
    return re.sub(r"[^a-z0-9]+", "_", low).strip("_")


@dataclass(slots=True)
class _Folder:
    """Finds the file for a role in either layout, and records what was used."""

    root: Path
    sos: bool
    index: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.sos:
            for p in sorted(self.root.iterdir()):
                if p.is_file():
                    self.index.setdefault(_norm(p.name), p)

    def find(self, role: str) -> Path | None:
        if self.sos:
            for rel in SOS_NAMES.get(role, ()):
                p = self.root / rel
                if p.is_file():
                    return p
            return None
        for n in FLAT_NAMES.get(role, ()):
            if n in self.index:
                return self.index[n]
        return None

    def expected(self, role: str) -> str:
        names = SOS_NAMES.get(role, ()) if self.sos else FLAT_NAMES.get(role, ())
        if not names:
            return role
        if self.sos:
            return names[0]
        return {"addr": "ip_addr.json", "route4": "ip_route.json", "route6": "ip6_route.json",
                "rule4": "ip_rule.json", "rule6": "ip6_rule.json", "neigh": "ip_neigh.json",
                "nft": "nft.json", "ss": "ss.txt", "conntrack": "conntrack.txt",
                "sysctl": "sysctl.txt", "ipset": "ipset.txt", "tc": "tc_qdisc.json",
                }.get(role, names[0].replace("_", "-") + ".txt")

    def rel(self, p: Path) -> str:
        try:
            return str(p.relative_to(self.root))
        except ValueError:
            return str(p)

    def read(self, p: Path) -> str:
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise SnapshotError(f"cannot read: {exc.strerror or exc}", file=str(p)) from None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("utf-8", "replace")


@dataclass(slots=True)
class _Acc:
    interfaces: tuple[Interface, ...] = ()
    addresses: tuple[Address, ...] = ()
    routes: list[Route] = field(default_factory=list)
    rules: list[PolicyRule] = field(default_factory=list)
    neighbours: list[Neighbour] = field(default_factory=list)
    sockets: tuple[Socket, ...] = ()
    conntrack: tuple[ConntrackEntry, ...] = ()
    sysctls: dict[str, str] = field(default_factory=dict)
    ipsets: tuple[IpSet, ...] = ()
    iptables: list[IptablesDump] = field(default_factory=list)
    raw: list[RawDump] = field(default_factory=list)
    parts: list[PartStatus] = field(default_factory=list)
    newest: float = 0.0

    def ok(self, name: str, source: str, reason: str | None = None) -> None:
        self.parts.append(PartStatus(name, PartState.COLLECTED, reason, source))

    def missing(self, name: str, reason: str, source: str | None = None) -> None:
        self.parts.append(PartStatus(name, PartState.MISSING, reason, source))

    def partial(self, name: str, reason: str, source: str | None = None) -> None:
        self.parts.append(PartStatus(name, PartState.PARTIAL, reason, source))


def import_dir(path: str | Path) -> HostSnapshot:
    """Read a folder of raw command outputs (journey's names or a sos report)."""
    root = Path(path)
    if not root.exists():
        raise SnapshotError("no such folder", file=str(root))
    if not root.is_dir():
        raise SnapshotError("not a folder (expected a folder of command outputs or a sos report)",
                            file=str(root))
    sos = (root / "sos_commands").is_dir()
    folder = _Folder(root, sos)
    acc = _Acc()

    def use(role: str) -> tuple[Path, str] | None:
        p = folder.find(role)
        if p is None:
            return None
        with contextlib.suppress(OSError):
            acc.newest = max(acc.newest, p.stat().st_mtime)
        return p, folder.read(p)

    _import_links(folder, acc, use)
    _import_pair(folder, acc, use, "routes", ("route4", "route6"), _routes)
    _import_pair(folder, acc, use, "rules", ("rule4", "rule6"), _rules)
    _import_neigh(folder, acc, use)
    _import_simple(folder, acc, use, "sockets", "ss",
                   lambda text, src: setattr(acc, "sockets", tp.parse_ss(text, src)))
    _import_simple(folder, acc, use, "conntrack", "conntrack",
                   lambda text, src: setattr(acc, "conntrack", tp.parse_conntrack(text, src)))
    _import_sysctls(folder, acc, use)
    for role in IPTABLES_ROLES:
        _import_iptables(folder, acc, use, role)
    _import_nft(folder, acc, use)
    _import_simple(folder, acc, use, "ipsets", "ipset", lambda text, src: _ipsets(acc, text, src))
    _import_tc(folder, acc, use)

    hostname = _first_line(use("hostname")) or root.name
    uname = _first_line(use("uname"))
    kernel = "unknown"
    if uname:
        words = uname.split()
        kernel = words[2] if len(words) >= 3 and words[0] == "Linux" else words[0]
    when = datetime.datetime.fromtimestamp(acc.newest or root.stat().st_mtime, datetime.UTC)
    prov = Provenance(
        hostname=hostname,
        kernel=kernel,
        time=when.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        journey_version=__version__,
        uid=None,
        netns=None,
        origin="sosreport" if sos else "from-dir",
        parts=tuple(acc.parts),
    )
    return HostSnapshot(
        provenance=prov,
        interfaces=acc.interfaces,
        addresses=acc.addresses,
        routes=tuple(acc.routes),
        rules=tuple(acc.rules),
        neighbours=tuple(acc.neighbours),
        sockets=acc.sockets,
        conntrack=acc.conntrack,
        sysctls=acc.sysctls,
        ipsets=acc.ipsets,
        iptables=tuple(acc.iptables),
        raw=tuple(acc.raw),
    )


_Use = Callable[[str], "tuple[Path, str] | None"]


def _first_line(found: tuple[Path, str] | None) -> str | None:
    if found is None:
        return None
    for line in found[1].splitlines():
        if line.strip():
            return line.strip()
    return None


def _import_links(folder: _Folder, acc: _Acc, use: _Use) -> None:
    found = use("addr")
    if found is not None:
        p, text = found
        acc.interfaces, acc.addresses = tp.parse_ip_addr(text, folder.rel(p))
        acc.ok("addresses", folder.rel(p))
        if any(i.flags for i in acc.interfaces):
            acc.ok("interfaces", folder.rel(p))
            return
    # no address file, or one without link details (`ip -o addr`): use the link listing
    link_found = use("link")
    if link_found is not None:
        lp, ltext = link_found
        ifaces, laddrs = tp.parse_ip_addr(ltext, folder.rel(lp))
        acc.interfaces = ifaces
        acc.ok("interfaces", folder.rel(lp))
        if found is None:
            if laddrs:
                acc.addresses = laddrs
                acc.ok("addresses", folder.rel(lp))
            else:
                acc.missing("addresses", f"file not found: {folder.expected('addr')}")
        return
    if found is not None:
        acc.partial("interfaces", "index and name only (`ip -o addr` has no link details); "
                    f"file not found: {folder.expected('link')}", folder.rel(found[0]))
        return
    reason = f"file not found: {folder.expected('addr')}"
    acc.missing("interfaces", reason)
    acc.missing("addresses", reason)


def _routes(text: str, src: str, family: Family) -> list[Route]:
    return list(tp.parse_ip_route(text, src, family if family is Family.IPV6 else None))


def _rules(text: str, src: str, family: Family) -> list[PolicyRule]:
    return list(tp.parse_ip_rule(text, src, family))


def _import_pair(folder: _Folder, acc: _Acc, use: _Use, part: str, roles: tuple[str, str],
                 parse: Callable[[str, str, Family], Sequence[Route] | Sequence[PolicyRule]]) -> None:
    f4, f6 = use(roles[0]), use(roles[1])
    values: list[Route | PolicyRule] = []
    if f4 is not None:
        # `ip route show table all` lists both families: with a v6 file, keep v4 only from it
        values += [v for v in parse(f4[1], folder.rel(f4[0]), Family.IPV4)
                   if f6 is None or v.family is Family.IPV4]
    if f6 is not None:
        values += [v for v in parse(f6[1], folder.rel(f6[0]), Family.IPV6)
                   if v.family is Family.IPV6]
    sources = ", ".join(folder.rel(f[0]) for f in (f4, f6) if f is not None)
    if f4 is None and f6 is None:
        acc.missing(part, "file not found: " + " and ".join(folder.expected(r) for r in roles))
    elif f4 is None or f6 is None:
        absent = roles[0] if f4 is None else roles[1]
        fam = "IPv4" if f4 is None else "IPv6"
        if part == "routes" and f6 is None and any(v.family is Family.IPV6 for v in values):
            acc.ok(part, sources, f"IPv6 routes from {sources}")
        else:
            acc.partial(part, f"no {fam} {part}: file not found: {folder.expected(absent)}",
                        sources)
    else:
        acc.ok(part, sources)
    if part == "routes":
        acc.routes += [v for v in values if isinstance(v, Route)]
    else:
        acc.rules += [v for v in values if isinstance(v, PolicyRule)]


def _import_neigh(folder: _Folder, acc: _Acc, use: _Use) -> None:
    found = use("neigh")
    if found is None:
        acc.missing("neighbours", f"file not found: {folder.expected('neigh')}")
        return
    acc.neighbours += tp.parse_ip_neigh(found[1], folder.rel(found[0]))
    sources = folder.rel(found[0])
    extra = use("neigh_noarp") if folder.sos else None
    if extra is not None:
        seen = {(n.address, n.ifname) for n in acc.neighbours}
        acc.neighbours += [n for n in tp.parse_ip_neigh(extra[1], folder.rel(extra[0]))
                           if (n.address, n.ifname) not in seen]
        sources += ", " + folder.rel(extra[0])
    acc.ok("neighbours", sources)


def _import_simple(folder: _Folder, acc: _Acc, use: _Use, part: str, role: str,
                   parse: Callable[[str, str], None]) -> None:
    found = use(role)
    if found is None:
        acc.missing(part, f"file not found: {folder.expected(role)}")
        return
    parse(found[1], folder.rel(found[0]))
    acc.ok(part, folder.rel(found[0]))


def _ipsets(acc: _Acc, text: str, src: str) -> None:
    acc.ipsets = tp.parse_ipset_save(text, src)
    acc.raw.append(RawDump("ipset save", text, src))


def _import_sysctls(folder: _Folder, acc: _Acc, use: _Use) -> None:
    found = use("sysctl")
    if found is not None:
        acc.sysctls = tp.parse_sysctl(found[1], folder.rel(found[0]))
        acc.ok("sysctls", folder.rel(found[0]))
        return
    proc = folder.root / "proc" / "sys" / "net"
    if proc.is_dir():  # a copied /proc/sys/net tree (sos copies some of it)
        for p in sorted(proc.rglob("*")):
            if p.is_file():
                key = ".".join(p.relative_to(folder.root / "proc" / "sys").parts)
                acc.sysctls[key] = folder.read(p).strip()
        acc.partial("sysctls", "only the files copied under proc/sys/net",
                    folder.rel(proc))
        return
    acc.missing("sysctls", f"file not found: {folder.expected('sysctl')}")


def _import_iptables(folder: _Folder, acc: _Acc, use: _Use, role: str) -> None:
    from journey.snapshot.iptables_save import parse_iptables_save

    family, backend, raw_name = IPTABLES_ROLES[role]
    found = use(role)
    if found is None:
        reason = f"file not found: {folder.expected(role)}"
        listing = SOS_IPTABLES_LISTINGS.get(role) if folder.sos else None
        if listing and (folder.root / listing).is_file():
            reason += (f" (the sos report has only {listing}, a listing journey cannot "
                       f"simulate; add the output of {raw_name})")
            text = folder.read(folder.root / listing)
            acc.raw.append(RawDump(listing.rsplit("/", 1)[-1].replace("_", " "), text, listing))
        acc.missing(role, reason)
        return
    p, text = found
    src = folder.rel(p)
    dump = parse_iptables_save(text, source=src, family=family, backend=backend)
    acc.iptables.append(dump)
    acc.raw.append(RawDump(raw_name, text, src))
    acc.ok(role, src)


def _import_nft(folder: _Folder, acc: _Acc, use: _Use) -> None:
    found = use("nft")
    if found is None:
        acc.missing("nftables", f"file not found: {folder.expected('nft')}")
        return
    p, text = found
    src = folder.rel(p)
    if text.lstrip().startswith("{"):
        tp.summarize_nft_json(text, src)  # validates: bad JSON names file and line
        acc.raw.append(RawDump("nft -j list ruleset", text, src))
        acc.ok("nftables", src)
    else:
        acc.raw.append(RawDump("nft list ruleset", text, src))
        acc.ok("nftables", src, "text form (nft list ruleset), kept raw")


def _import_tc(folder: _Folder, acc: _Acc, use: _Use) -> None:
    found = use("tc")
    if found is None:
        acc.missing("tc", f"file not found: {folder.expected('tc')}")
        return
    p, text = found
    src = folder.rel(p)
    if text.lstrip().startswith("["):
        tp.load_json(text, src)
        acc.raw.append(RawDump("tc -j qdisc show", text, src))
    else:
        acc.raw.append(RawDump("tc qdisc show", text, src))
    acc.ok("tc", src)
