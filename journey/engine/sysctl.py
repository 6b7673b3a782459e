"""Typed access to the sysctls of a HostSnapshot, combined the way the kernel combines them.

The kernel reads most ``net.ipv4.conf.*`` settings through macros that combine the ``all`` and
the per-interface value (``include/linux/inetdevice.h``):

- ``IN_DEV_ORCONF``  (all OR iface): accept_local, route_localnet, src_valid_mark,
  send_redirects, log_martians, proxy_arp, ignore_routes_with_linkdown, ...
- ``IN_DEV_ANDCONF`` (all AND iface): bc_forwarding, accept_source_route, mc_forwarding
- ``IN_DEV_MAXCONF`` (max(all, iface)): rp_filter, arp_ignore
- per interface only: ``forwarding`` (``net.ipv4.ip_forward`` is ``conf.all.forwarding``; writing
  ``all`` copies the value to every interface)

IPv6 reads ``net.ipv6.conf.all.forwarding`` for forwarding (``ip6_forward``), and per-interface
values for most others. A key missing from the snapshot falls back to ``conf.default`` (what a
new interface inherits) and then to the kernel default; the answer says so (``assumed``).

Every accessor returns a ``SysctlValue``: the effective value plus the ``ConfigRef``s (key and
value) that decided it. Pure: no I/O, no textual, no rich.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from journey.model.family import Family
from journey.model.journey import ConfigRef
from journey.model.snapshot import HostSnapshot


class Combine(enum.StrEnum):
    """How the kernel combines ``conf.all.X`` with ``conf.IFACE.X``."""

    OR = "or"  # IN_DEV_ORCONF
    AND = "and"  # IN_DEV_ANDCONF
    MAX = "max"  # IN_DEV_MAXCONF
    IFACE = "iface"  # IN_DEV_CONF_GET: the interface's own value only
    ALL = "all"  # only conf.all (IPv6 forwarding)


@dataclass(frozen=True, slots=True)
class SysctlValue:
    """An effective sysctl value and where it came from."""

    value: int
    config: tuple[ConfigRef, ...] = ()
    assumed: bool = False  # at least one key was missing: a default was used
    how: str = ""  # "max(all=0, eth0=1)"

    def __bool__(self) -> bool:
        return self.value != 0

    def __int__(self) -> int:
        return self.value

    def text(self) -> str:
        """e.g. ``net.ipv4.conf.eth0.rp_filter = 1 (max(all=0, eth0=1))``."""
        keys = ", ".join(c.text for c in self.config)
        return f"{keys} ({self.how})" if self.how else keys


def _ref(key: str, value: str, assumed: bool) -> ConfigRef:
    where = key + (" (not in snapshot: kernel default)" if assumed else "")
    return ConfigRef(kind="sysctl", text=f"{key} = {value}", where=where)


def _as_int(raw: str) -> int | None:
    raw = raw.strip()
    try:
        return int(raw, 0)
    except ValueError:
        first = raw.split()[0] if raw.split() else ""
        try:
            return int(first, 0)
        except ValueError:
            return None


def get(snap: HostSnapshot, key: str, default: int) -> SysctlValue:
    """One sysctl as an int; the kernel default when missing or unreadable."""
    raw = snap.sysctls.get(key)
    if raw is not None:
        v = _as_int(raw)
        if v is not None:
            return SysctlValue(v, (_ref(key, str(v), False),))
    return SysctlValue(default, (_ref(key, str(default), True),), assumed=True)


def _iface_key(prefix: str, ifname: str, name: str) -> list[str]:
    keys = [f"{prefix}.{ifname}.{name}"]
    if "." in ifname:  # sysctl(8) spelling of eth0.100 is eth0/100
        keys.append(f"{prefix}.{ifname.replace('.', '/')}.{name}")
    return keys


def _iface_value(snap: HostSnapshot, prefix: str, ifname: str, name: str,
                 default: int) -> SysctlValue:
    for key in _iface_key(prefix, ifname, name):
        raw = snap.sysctls.get(key)
        if raw is not None and (v := _as_int(raw)) is not None:
            return SysctlValue(v, (_ref(key, str(v), False),))
    dkey = f"{prefix}.default.{name}"
    raw = snap.sysctls.get(dkey)
    if raw is not None and (v := _as_int(raw)) is not None:
        ref = ConfigRef(kind="sysctl", text=f"{dkey} = {v}",
                        where=f"{prefix}.{ifname}.{name} not in snapshot: inherited default")
        return SysctlValue(v, (ref,), assumed=True)
    key = f"{prefix}.{ifname}.{name}"
    return SysctlValue(default, (_ref(key, str(default), True),), assumed=True)


_COMBINERS: dict[Combine, Callable[[int, int], int]] = {
    Combine.OR: lambda a, b: int(bool(a) or bool(b)),
    Combine.AND: lambda a, b: int(bool(a) and bool(b)),
    Combine.MAX: max,
}


def conf(snap: HostSnapshot, family: Family, ifname: str | None, name: str, default: int,
         combine: Combine) -> SysctlValue:
    """``net.ipv{4,6}.conf.{all,IFACE}.NAME`` combined as the kernel does.

    With ``ifname`` None only ``conf.all`` is read.
    """
    prefix = "net.ipv4.conf" if family is Family.IPV4 else "net.ipv6.conf"
    allv = get(snap, f"{prefix}.all.{name}", default)
    if ifname is None or combine is Combine.ALL:
        return allv
    dev = _iface_value(snap, prefix, ifname, name, default)
    if combine is Combine.IFACE:
        return dev
    value = _COMBINERS[combine](allv.value, dev.value)
    how = f"{combine}(all={allv.value}, {ifname}={dev.value})"
    return SysctlValue(value, allv.config + dev.config, allv.assumed or dev.assumed, how)


# -- the accessors the engine uses ------------------------------------------------------------

def ip_forward(snap: HostSnapshot, family: Family) -> SysctlValue:
    """Global forwarding: ``net.ipv4.ip_forward`` / ``net.ipv6.conf.all.forwarding``."""
    if family is Family.IPV4:
        return get(snap, "net.ipv4.ip_forward", 0)
    return get(snap, "net.ipv6.conf.all.forwarding", 0)


def iface_forwarding(snap: HostSnapshot, family: Family, ifname: str) -> SysctlValue:
    """Whether a packet arriving on ``ifname`` may be forwarded.

    IPv4: ``IN_DEV_FORWARD`` = ``net.ipv4.conf.IFACE.forwarding`` alone (ip_route_input_slow).
    IPv6: ``net.ipv6.conf.all.forwarding`` (ip6_forward), or the interface's
    ``force_forwarding`` (kernel 6.17+) when that key exists.
    """
    if family is Family.IPV4:
        return conf(snap, family, ifname, "forwarding", 0, Combine.IFACE)
    allv = get(snap, "net.ipv6.conf.all.forwarding", 0)
    if allv.value:
        return allv
    for key in _iface_key("net.ipv6.conf", ifname, "force_forwarding"):
        raw = snap.sysctls.get(key)
        if raw is not None and (_as_int(raw) or 0):
            return SysctlValue(1, (*allv.config, _ref(key, raw.strip(), False)),
                               how=f"all.forwarding=0, {ifname}.force_forwarding=1")
    return allv


def rp_filter(snap: HostSnapshot, ifname: str) -> SysctlValue:
    """Reverse path filter mode for packets arriving on ``ifname``: max(all, iface).

    0 = off, 1 = strict, 2 = loose.
    """
    return conf(snap, Family.IPV4, ifname, "rp_filter", 0, Combine.MAX)


def accept_local(snap: HostSnapshot, ifname: str) -> SysctlValue:
    """Accept packets whose source is a local address (IN_DEV_ACCEPT_LOCAL: all OR iface)."""
    return conf(snap, Family.IPV4, ifname, "accept_local", 0, Combine.OR)


def route_localnet(snap: HostSnapshot, ifname: str) -> SysctlValue:
    """127.0.0.0/8 may be routed on ``ifname`` (IN_DEV_ROUTE_LOCALNET: all OR iface)."""
    return conf(snap, Family.IPV4, ifname, "route_localnet", 0, Combine.OR)


def src_valid_mark(snap: HostSnapshot, ifname: str) -> SysctlValue:
    """The rp_filter reverse lookup uses the packet's mark (IN_DEV_SRC_VMARK: all OR iface)."""
    return conf(snap, Family.IPV4, ifname, "src_valid_mark", 0, Combine.OR)


def send_redirects(snap: HostSnapshot, ifname: str) -> SysctlValue:
    """IN_DEV_TX_REDIRECTS: all OR iface (kernel default 1)."""
    return conf(snap, Family.IPV4, ifname, "send_redirects", 1, Combine.OR)


def shared_media(snap: HostSnapshot, ifname: str) -> SysctlValue:
    """IN_DEV_SHARED_MEDIA: all OR iface (kernel default 1): redirects to any on-link sender."""
    return conf(snap, Family.IPV4, ifname, "shared_media", 1, Combine.OR)


def bc_forwarding(snap: HostSnapshot, ifname: str) -> SysctlValue:
    """Directed broadcasts are forwarded (IN_DEV_BFORWARD: all AND iface)."""
    return conf(snap, Family.IPV4, ifname, "bc_forwarding", 0, Combine.AND)


def accept_source_route(snap: HostSnapshot, ifname: str) -> SysctlValue:
    """IN_DEV_SOURCE_ROUTE: all AND iface (kernel default 0 for IPv4)."""
    return conf(snap, Family.IPV4, ifname, "accept_source_route", 0, Combine.AND)


def log_martians(snap: HostSnapshot, ifname: str) -> SysctlValue:
    """IN_DEV_LOG_MARTIANS: all OR iface."""
    return conf(snap, Family.IPV4, ifname, "log_martians", 0, Combine.OR)


def ignore_routes_with_linkdown(snap: HostSnapshot, family: Family, ifname: str) -> SysctlValue:
    """Routes whose nexthop device has no carrier are skipped.

    IPv4: IN_DEV_IGNORE_ROUTES_WITH_LINKDOWN (all OR iface); IPv6: the interface's value
    (``ip6_ignore_linkdown``). Kernel default 0: linkdown routes are used.
    """
    combine = Combine.OR if family is Family.IPV4 else Combine.IFACE
    return conf(snap, family, ifname, "ignore_routes_with_linkdown", 0, combine)


def use_tempaddr(snap: HostSnapshot, ifname: str) -> SysctlValue:
    """IPv6 privacy addresses preference of ``ifname`` (>= 2: prefer temporary)."""
    return conf(snap, Family.IPV6, ifname, "use_tempaddr", 0, Combine.IFACE)


def use_oif_addrs_only(snap: HostSnapshot, ifname: str) -> SysctlValue:
    """IPv6 source selection only from the output interface's addresses."""
    return conf(snap, Family.IPV6, ifname, "use_oif_addrs_only", 0, Combine.IFACE)


def multipath_hash_policy(snap: HostSnapshot, family: Family) -> SysctlValue:
    """``net.ipv{4,6}.fib_multipath_hash_policy`` (0 = L3, 1 = L4, 2 = L3 inner, 3 = custom)."""
    key = "net.ipv4.fib_multipath_hash_policy" if family is Family.IPV4 else \
        "net.ipv6.fib_multipath_hash_policy"
    return get(snap, key, 0)


def multipath_use_neigh(snap: HostSnapshot) -> SysctlValue:
    """``net.ipv4.fib_multipath_use_neigh``: skip nexthops whose neighbour is failed."""
    return get(snap, "net.ipv4.fib_multipath_use_neigh", 0)


def tcp_loose(snap: HostSnapshot) -> SysctlValue:
    """``net.netfilter.nf_conntrack_tcp_loose`` (default 1: mid-stream pickup is NEW)."""
    return get(snap, "net.netfilter.nf_conntrack_tcp_loose", 1)


def ip_nonlocal_bind(snap: HostSnapshot, family: Family) -> SysctlValue:
    """``net.ipv4.ip_nonlocal_bind`` / ``net.ipv6.ip_nonlocal_bind``."""
    key = "net.ipv4.ip_nonlocal_bind" if family is Family.IPV4 else "net.ipv6.ip_nonlocal_bind"
    return get(snap, key, 0)


def icmp_echo_ignore_all(snap: HostSnapshot, family: Family) -> SysctlValue:
    key = "net.ipv4.icmp_echo_ignore_all" if family is Family.IPV4 else \
        "net.ipv6.icmp.echo_ignore_all"
    return get(snap, key, 0)


def icmp_echo_ignore_broadcasts(snap: HostSnapshot) -> SysctlValue:
    return get(snap, "net.ipv4.icmp_echo_ignore_broadcasts", 1)
