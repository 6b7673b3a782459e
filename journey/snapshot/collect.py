"""Live, read-only collection of a host's (or a network namespace's) network state.

``collect(netns=None)`` returns a ``HostSnapshot``: links, addresses, routes (every table, both
families), policy rules, neighbours, TCP/UDP sockets with their owning processes, conntrack,
``/proc/sys/net`` sysctls, iptables (nft-backed and legacy, v4 and v6), the nft ruleset, ipsets
and tc qdiscs/filters. Every part gets a ``PartStatus``: collected, partial or missing with the
reason (typically "needs root"). Lack of privilege never raises; only an unusable namespace does
(``CollectError``).

READ-ONLY: only dumps are requested and only ``*-save`` / ``list`` / ``show`` commands are run.
Nothing is created, loaded, flushed or changed. In particular a missing namespace is never
created (pyroute2's ``netns=`` defaults to ``O_CREAT``; this module never uses it).

How a namespace is entered: each worker thread calls ``setns(2)`` on its own thread (the
namespace file is opened ``O_RDONLY``, never created) and restores its original namespace
afterwards. In that thread, netlink sockets (pyroute2 ``IPRoute``/``DiagSocket``/``Conntrack``
created without ``netns=``), ``/proc/sys/net``, ``/proc/thread-self/net`` and child processes
(``iptables-save`` ...) all belong to the namespace. This is the thread-level ``pushns``/``popns``
of pyroute2 without its two traps (a process-global stack shared by threads, and ``O_CREAT``),
and it avoids pyroute2's ``netns=`` fork of a multi-threaded process. It is equivalent to
``ip netns exec NAME cmd`` for these tools (which need no per-netns ``/sys`` or ``/etc``).

Sysctl keys: the ``/proc/sys`` path below ``/proc/sys`` with ``/`` replaced by ``.``, so an
interface name containing dots stays as is: ``net.ipv4.conf.eth0.100.rp_filter`` (``sysctl(8)``
would print ``net.ipv4.conf.eth0/100.rp_filter``). Look keys up as
``f"net.ipv4.conf.{ifname}.rp_filter"``.

Socket states use the names ``ss`` prints: LISTEN, ESTAB, UNCONN, SYN-SENT, SYN-RECV,
FIN-WAIT-1, FIN-WAIT-2, TIME-WAIT, CLOSE-WAIT, LAST-ACK, CLOSING.

Must not depend on textual or rich. pyroute2 is imported lazily (by ``journey.snapshot.netlink``).
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import errno
import functools
import json
import os
import shutil
import socket
import stat
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from typing import TypeVar

from journey import __version__
from journey.errors import CollectError, JourneyError
from journey.model.family import Family
from journey.model.ruleset import Backend, IptablesDump
from journey.model.snapshot import (
    HostSnapshot,
    IpSet,
    PartState,
    PartStatus,
    Process,
    Provenance,
    RawDump,
    Socket,
)

T = TypeVar("T")

NETNS_RUN_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
TOOL_TIMEOUT = 60.0
SYSCTL_MAX_BYTES = 1 << 16

# every part a live snapshot reports on, in display order
PART_NAMES: tuple[str, ...] = (
    "interfaces", "addresses", "routes", "rules", "neighbours", "sockets", "conntrack", "sysctls",
    "iptables-v4-nft", "iptables-v6-nft", "iptables-v4-legacy", "iptables-v6-legacy", "nftables",
    "ipsets", "tc",
)
RTNL_PARTS = ("interfaces", "addresses", "routes", "rules", "neighbours")

# tc root qdiscs that can hold filters (classful); ingress/clsact are handled separately
CLASSFUL_QDISCS = frozenset({"htb", "hfsc", "cbq", "prio", "drr", "qfq", "ets", "multiq",
                             "dsmark", "atm", "taprio", "mqprio"})


# --- namespaces ---------------------------------------------------------------------------------


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def netns_path(netns: str) -> str:
    """The file of a named namespace (``/run/netns/NAME``), or ``netns`` itself if it is a path."""
    if netns.startswith("/"):
        return netns
    if not netns or "/" in netns or netns in (".", ".."):
        raise CollectError(f"invalid network namespace name: {netns!r}")
    return f"{NETNS_RUN_DIR}/{netns}"


def _setns(fd: int) -> None:
    if _libc().setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def in_netns(path: str | None) -> Iterator[None]:
    """Run the body with the *calling thread* in the network namespace at ``path``.

    ``None`` runs in the current namespace. The namespace file is opened read-only: a missing
    one raises ``FileNotFoundError`` and is never created.
    """
    if path is None:
        yield
        return
    target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        saved = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target)
            try:
                yield
            finally:
                _setns(saved)
        finally:
            os.close(saved)
    finally:
        os.close(target)


def check_netns(netns: str) -> str:
    """The namespace's path, after checking it exists and can be entered (never creating it)."""
    path = netns_path(netns)
    if not os.path.exists(path):
        raise CollectError(f"no such network namespace: {netns}")
    problem: list[BaseException] = []

    def probe() -> None:
        try:
            with in_netns(path):
                pass
        except BaseException as e:  # reported in the caller's thread
            problem.append(e)

    t = threading.Thread(target=probe, name="journey-netns-probe")
    t.start()
    t.join()
    if problem:
        e = problem[0]
        if isinstance(e, PermissionError) or (isinstance(e, OSError) and e.errno == errno.EPERM):
            raise CollectError(f"cannot enter network namespace {netns}: needs root "
                               "(CAP_SYS_ADMIN)")
        if isinstance(e, OSError) and e.errno == errno.EINVAL:
            raise CollectError(f"not a network namespace: {netns} ({path})")
        raise CollectError(f"cannot enter network namespace {netns}: {e}")
    return path


# --- results of the workers ---------------------------------------------------------------------


@dataclass(slots=True)
class _Result:
    """What one worker produced: parts' statuses plus the values it fills in."""

    statuses: list[PartStatus] = field(default_factory=list)
    raw: list[RawDump] = field(default_factory=list)
    iptables: list[IptablesDump] = field(default_factory=list)
    values: dict[str, object] = field(default_factory=dict)


def _ok(name: str, source: str, reason: str | None = None) -> PartStatus:
    return PartStatus(name, PartState.COLLECTED, reason, source)


def _missing(name: str, source: str | None, reason: str) -> PartStatus:
    return PartStatus(name, PartState.MISSING, reason, source)


def _partial(name: str, source: str | None, reason: str) -> PartStatus:
    return PartStatus(name, PartState.PARTIAL, reason, source)


def _is_root() -> bool:
    return os.geteuid() == 0


def _privilege_reason(what: str, detail: str) -> str:
    """A reason text; says "needs root" when the failure looks like a privilege problem."""
    low = detail.lower()
    if (not _is_root()) or "permission" in low or "not permitted" in low or "must be root" in low:
        return f"needs root (CAP_NET_ADMIN): {what} said: {detail}"
    return f"{what} failed: {detail}"


def _error_text(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    args: tuple[object, ...] = e.args
    if len(args) >= 2 and isinstance(args[0], int) and isinstance(args[1], str):
        return args[1]  # pyroute2 NetlinkError(code, message)
    return str(e) or type(e).__name__


# --- tools --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ToolRun:
    argv: tuple[str, ...]
    rc: int | None  # None: not installed / could not start
    stdout: str
    stderr: str

    @property
    def command(self) -> str:
        return " ".join(self.argv)

    def first_error(self) -> str:
        for line in self.stderr.splitlines():
            line = line.strip()
            if line and not line.startswith("# Warning"):
                return line
        return f"exit status {self.rc}"


def run_tool(argv: list[str]) -> ToolRun:
    """Run a read-only tool in the calling thread's namespace; stdout is the result."""
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT,
                           stdin=subprocess.DEVNULL, errors="replace")
    except FileNotFoundError:
        return ToolRun(tuple(argv), None, "", f"{argv[0]} is not installed")
    except subprocess.TimeoutExpired:
        return ToolRun(tuple(argv), None, "", f"timed out after {TOOL_TIMEOUT:.0f} s")
    except OSError as e:
        return ToolRun(tuple(argv), None, "", _error_text(e))
    return ToolRun(tuple(argv), p.returncode, p.stdout, p.stderr)


@functools.cache
def _tool_backend(tool: str) -> str | None:
    """'nft' or 'legacy' for an ``iptables-save``-like binary (from its ``-V``), None if absent."""
    if shutil.which(tool) is None:
        return None
    try:
        out = subprocess.run([tool, "-V"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return "nft" if "nf_tables" in out else "legacy"


def iptables_command(family: Family, backend: Backend) -> str | None:
    """Which binary dumps ``family``/``backend``: prefer the explicit ``-nft-``/``-legacy-``
    names, fall back to plain ``iptables-save`` when its ``-V`` says it is that backend."""
    base = "iptables" if family is Family.IPV4 else "ip6tables"
    explicit = f"{base}-{backend.value}-save"
    if shutil.which(explicit):
        return explicit
    plain = f"{base}-save"
    if _tool_backend(plain) == backend.value:
        return plain
    return None


# --- workers (each runs inside the namespace, in its own thread) ---------------------------------


def _w_rtnl() -> _Result:
    from journey.snapshot.netlink import read_rtnl

    res = _Result()
    try:
        st = read_rtnl()
    except Exception as e:
        reason = _privilege_reason("rtnetlink dump", _error_text(e))
        res.statuses += [_missing(p, "rtnetlink", reason) for p in RTNL_PARTS]
        return res
    for part in RTNL_PARTS:
        notes = st.notes.get(part)
        if notes:
            more = f" (+{len(notes) - 1} more)" if len(notes) > 1 else ""
            res.statuses.append(_partial(part, "rtnetlink", notes[0] + more))
        else:
            res.statuses.append(_ok(part, "rtnetlink"))
    res.values.update(interfaces=tuple(st.interfaces), addresses=tuple(st.addresses),
                      routes=tuple(st.routes), rules=tuple(st.rules),
                      neighbours=tuple(st.neighbours))
    return res


def _w_sockets() -> _Result:
    from journey.snapshot.netlink import read_sockets

    res = _Result()
    try:
        res.values["sockets"] = read_sockets()
    except Exception as e:
        res.statuses.append(_missing("sockets", "inet_diag",
                                     _privilege_reason("inet_diag dump", _error_text(e))))
    return res


def _w_conntrack() -> _Result:
    from journey.snapshot.netlink import read_conntrack

    res = _Result()
    try:
        entries = read_conntrack()
    except Exception as e:
        res.statuses.append(_missing("conntrack", "ctnetlink",
                                     _privilege_reason("conntrack netlink dump", _error_text(e))))
        return res
    res.values["conntrack"] = tuple(entries)
    note = None
    if not entries:
        note = ("empty: note that conntrack only tracks in a namespace where some rule uses it")
    res.statuses.append(_ok("conntrack", "ctnetlink", note))
    return res


def read_sysctls(root: str = "/proc/sys/net") -> tuple[dict[str, str], list[str], list[str]]:
    """Every readable sysctl below ``root`` -> value (trailing newline removed).

    Also returns the keys refused for lack of privilege (EACCES/EPERM), and the keys that failed
    otherwise (e.g. ``stable_secret`` answers EIO while unset). Write-only files are skipped."""
    values: dict[str, str] = {}
    denied: list[str] = []
    failed: list[str] = []
    base = root[: root.index("/sys/") + len("/sys/")] if "/sys/" in root else root + "/"
    for dirpath, _dirnames, filenames in os.walk(root):
        for fn in filenames:
            path = f"{dirpath}/{fn}"
            key = path[len(base):].replace("/", ".")
            try:
                mode = os.stat(path).st_mode
                if not stat.S_ISREG(mode) or not mode & 0o444:
                    continue  # write-only (e.g. net.ipv4.route.flush)
                with open(path, "rb") as f:
                    data = f.read(SYSCTL_MAX_BYTES)
            except OSError as e:
                (denied if e.errno in (errno.EACCES, errno.EPERM) else failed).append(key)
                continue
            values[key] = data.decode("utf-8", "replace").rstrip("\n")
    return dict(sorted(values.items())), denied, failed


def _w_sysctls() -> _Result:
    res = _Result()
    values, denied, failed = read_sysctls()
    res.values["sysctls"] = values
    if not values:
        res.statuses.append(_missing("sysctls", "/proc/sys/net", "/proc/sys/net is not readable"))
    elif denied:
        res.statuses.append(_partial("sysctls", "/proc/sys/net",
                                     f"{len(denied)} unreadable (needs root), e.g. {denied[0]}"))
    else:
        note = (f"{len(failed)} gave a read error and are left out, e.g. {failed[0]}"
                if failed else None)
        res.statuses.append(_ok("sysctls", "/proc/sys/net", note))
    return res


def _parse_iptables(run: ToolRun, part: str, family: Family, backend: Backend,
                    res: _Result) -> None:
    try:
        from journey.snapshot.iptables_save import parse_iptables_save
    except ImportError:
        res.iptables.append(IptablesDump(family, backend, run.command, run.stdout))
        res.statuses.append(_partial(part, run.command, "no iptables-save parser available: "
                                     "kept the raw text only"))
        return
    try:
        dump = parse_iptables_save(run.stdout, source=run.command, family=family,
                                   backend=backend)
    except JourneyError as e:
        res.iptables.append(IptablesDump(family, backend, run.command, run.stdout))
        res.statuses.append(_partial(part, run.command, f"could not be parsed: {e.text()}"))
        return
    res.iptables.append(dump)
    res.statuses.append(_ok(part, run.command))


def _w_iptables(family: Family, backend: Backend) -> _Result:
    res = _Result()
    v = "v4" if family is Family.IPV4 else "v6"
    part = f"iptables-{v}-{backend.value}"
    six = "" if family is Family.IPV4 else "6"
    raw_name = f"ip{six}tables-save" if backend is Backend.NFT else f"ip{six}tables-legacy-save"
    if backend is Backend.LEGACY:
        names_file = f"/proc/thread-self/net/ip{six}_tables_names"
        try:
            with open(names_file, encoding="ascii", errors="replace") as f:
                names = f.read().split()
        except FileNotFoundError:
            res.statuses.append(_ok(part, names_file, "no legacy x_tables in this kernel"))
            return res
        except OSError as e:
            names = ["?"]  # cannot tell (unprivileged): try the tool, it reports the problem
            if not _is_root():
                res.statuses.append(_missing(part, names_file, _privilege_reason(
                    names_file, _error_text(e))))
                return res
        if not names:
            res.statuses.append(_ok(part, names_file,
                                    f"no legacy tables ({names_file.replace('thread-self', 'self')}"
                                    " is empty)"))
            return res
    cmd = iptables_command(family, backend)
    if cmd is None:
        res.statuses.append(_missing(part, None, f"no ip{six}tables-save for the "
                                     f"{backend.value} backend is installed"))
        return res
    run = run_tool([cmd])
    if run.rc != 0:
        reason = (run.first_error() if run.rc is None
                  else _privilege_reason(cmd, run.first_error()))
        res.statuses.append(_missing(part, cmd, reason))
        return res
    res.raw.append(RawDump(raw_name, run.stdout, run.command))
    _parse_iptables(run, part, family, backend, res)
    return res


def _w_nft() -> _Result:
    res = _Result()
    run = run_tool(["nft", "-j", "list", "ruleset"])
    if run.rc != 0:
        reason = run.first_error() if run.rc is None else _privilege_reason("nft", run.first_error())
        res.statuses.append(_missing("nftables", run.command, reason))
        return res
    res.raw.append(RawDump("nft -j list ruleset", run.stdout, run.command))
    res.statuses.append(_ok("nftables", run.command))
    if '"hook": "ingress"' in run.stdout:
        # nft 1.0.6 leaves an ingress chain's device out of JSON: the text listing has it
        chains = run_tool(["nft", "list", "chains"])
        if chains.rc == 0:
            res.raw.append(RawDump("nft list chains", chains.stdout, chains.command))
    return res


def _parse_ipsets(text: str, source: str) -> tuple[IpSet, ...] | None:
    """Parse ``ipset save`` with the shared text parser (None when it is not installed)."""
    try:
        from journey.snapshot.textparsers import parse_ipset_save
    except ImportError:
        return None
    return parse_ipset_save(text, source)


def _w_ipset() -> _Result:
    res = _Result()
    run = run_tool(["ipset", "save"])
    if run.rc != 0:
        reason = run.first_error() if run.rc is None else _privilege_reason("ipset", run.first_error())
        res.statuses.append(_missing("ipsets", run.command, reason))
        return res
    res.raw.append(RawDump("ipset save", run.stdout, run.command))
    try:
        sets = _parse_ipsets(run.stdout, run.command)
    except JourneyError as e:
        res.statuses.append(_partial("ipsets", run.command, f"could not be parsed: {e.text()}"))
        return res
    if sets is None:
        res.statuses.append(_partial("ipsets", run.command,
                                     "no ipset parser available: kept the raw text only"))
        return res
    res.values["ipsets"] = sets
    res.statuses.append(_ok("ipsets", run.command))
    return res


def _w_tc() -> _Result:
    res = _Result()
    run = run_tool(["tc", "-j", "qdisc", "show"])
    if run.rc != 0:
        reason = run.first_error() if run.rc is None else _privilege_reason("tc", run.first_error())
        res.statuses.append(_missing("tc", run.command, reason))
        return res
    res.raw.append(RawDump("tc -j qdisc show", run.stdout, run.command))
    try:
        qdiscs = json.loads(run.stdout or "[]")
    except ValueError as e:
        res.statuses.append(_partial("tc", run.command, f"tc -j output is not JSON: {e}"))
        return res
    wanted: list[tuple[str, str | None]] = []  # (dev, ingress|egress|None for root)
    for q in qdiscs if isinstance(qdiscs, list) else ():
        dev, kind = q.get("dev"), q.get("kind")
        if not isinstance(dev, str):
            continue
        if kind in ("ingress", "clsact"):
            wanted.append((dev, "ingress"))
            if kind == "clsact":
                wanted.append((dev, "egress"))
        elif q.get("root") and kind in CLASSFUL_QDISCS:
            wanted.append((dev, None))
    filters: dict[str, object] = {}
    sources: list[str] = []
    problems: list[str] = []
    for dev, direction in wanted:
        argv = ["tc", "-j", "filter", "show", "dev", dev] + ([direction] if direction else [])
        f = run_tool(argv)
        key = f"dev {dev}" + (f" {direction}" if direction else "")
        sources.append(f.command)
        if f.rc != 0:
            problems.append(f"{f.command}: {f.first_error()}")
            continue
        try:
            filters[key] = json.loads(f.stdout or "[]")
        except ValueError:
            problems.append(f"{f.command}: output is not JSON")
    # one dump for all filters: a JSON object "dev X ingress|egress" -> that command's JSON
    res.raw.append(RawDump("tc -j filter show", json.dumps(filters, indent=1),
                           "; ".join(sources) or "tc -j filter show (no ingress/clsact/classful"
                                                     " qdisc)"))
    if problems:
        res.statuses.append(_partial("tc", run.command, problems[0]))
    else:
        res.statuses.append(_ok("tc", run.command))
    return res


# --- orchestration ------------------------------------------------------------------------------


def _in(path: str | None, fn: Callable[[], T]) -> Callable[[], T]:
    def wrapped() -> T:
        with in_netns(path):
            return fn()
    return wrapped


def _attach_owners(sockets: list[Socket],
                   owners: Mapping[int, list[Process]]) -> tuple[Socket, ...]:
    out: list[Socket] = []
    for s in sockets:
        procs = owners.get(s.inode or -1)
        if procs:
            out.append(replace(s, processes=tuple(sorted(procs, key=lambda p: p.pid))))
        else:
            out.append(s)
    return tuple(out)


def collect(netns: str | None = None,
            progress: Callable[[str], None] | None = None) -> HostSnapshot:
    """Collect the live network state of this host, or of network namespace ``netns``.

    ``netns`` is a name under ``/run/netns`` (as ``ip netns`` shows) or a path such as
    ``/proc/PID/ns/net``. ``progress`` is called (from this thread) with a short message as each
    part finishes. Raises ``CollectError`` only when collection is impossible as a whole (no such
    namespace, cannot enter it, not Linux); anything that cannot be read for lack of privileges
    is marked missing in ``provenance.parts`` with the reason.
    """
    if not os.path.exists("/proc/self/ns/net"):
        raise CollectError("live collection needs Linux with /proc mounted")
    path = check_netns(netns) if netns is not None else None

    def say(msg: str) -> None:
        if progress is not None:
            progress(msg)

    say(f"collecting {'namespace ' + netns if netns else 'this host'}")
    from journey.snapshot.netlink import scan_socket_owners

    jobs: dict[str, Callable[[], _Result]] = {
        "links, addresses, routes, rules, neighbours": _w_rtnl,
        "sockets": _w_sockets,
        "conntrack": _w_conntrack,
        "sysctls": _w_sysctls,
        "iptables-save": functools.partial(_w_iptables, Family.IPV4, Backend.NFT),
        "ip6tables-save": functools.partial(_w_iptables, Family.IPV6, Backend.NFT),
        "iptables-legacy-save": functools.partial(_w_iptables, Family.IPV4, Backend.LEGACY),
        "ip6tables-legacy-save": functools.partial(_w_iptables, Family.IPV6, Backend.LEGACY),
        "nft": _w_nft,
        "ipset": _w_ipset,
        "tc": _w_tc,
    }
    results: list[_Result] = []
    owners_scan = None
    with ThreadPoolExecutor(max_workers=len(jobs) + 1, thread_name_prefix="journey-collect") as ex:
        futures: dict[Future[_Result], str] = {ex.submit(_in(path, fn)): name
                                               for name, fn in jobs.items()}
        scan_future = ex.submit(scan_socket_owners)  # /proc is global: no namespace needed
        for fut in as_completed(futures):
            name = futures[fut]
            try:
                results.append(fut.result())
            except Exception as e:  # a bug or an unexpected environment: report, never raise
                results.append(_Result(statuses=[_missing(p, None, f"{name}: {_error_text(e)}")
                                                 for p in _parts_of(name)]))
            say(f"read {name}")
        try:
            owners_scan = scan_future.result()
        except Exception:
            owners_scan = None

    values: dict[str, object] = {}
    statuses: dict[str, PartStatus] = {}
    raw: list[RawDump] = []
    dumps: list[IptablesDump] = []
    for r in results:
        values.update(r.values)
        for st in r.statuses:
            statuses[st.name] = st
        raw += r.raw
        dumps += r.iptables

    sockets_list = values.get("sockets")
    sockets: tuple[Socket, ...] = ()
    if isinstance(sockets_list, list):
        owners = owners_scan.owners if owners_scan is not None else {}
        sockets = _attach_owners(sockets_list, owners)
        unowned = [s for s in sockets if s.inode and not s.processes]
        if owners_scan is None:
            statuses["sockets"] = _partial("sockets", "inet_diag",
                                           "owning processes unknown: /proc scan failed")
        elif owners_scan.denied and unowned:
            statuses["sockets"] = _partial(
                "sockets", "inet_diag + /proc/*/fd",
                f"owning processes of {len(unowned)} sockets unknown: the fd tables of "
                f"{owners_scan.denied} processes are unreadable (needs root)")
        else:
            statuses["sockets"] = _ok("sockets", "inet_diag + /proc/*/fd")

    parts = tuple(statuses.get(p) or _missing(p, None, "not collected") for p in PART_NAMES)
    dumps.sort(key=lambda d: (d.backend != Backend.NFT, d.family.version))
    raw_order = ["iptables-save", "ip6tables-save", "iptables-legacy-save",
                 "ip6tables-legacy-save", "nft -j list ruleset", "ipset save", "tc -j qdisc show",
                 "tc -j filter show"]
    raw.sort(key=lambda d: raw_order.index(d.name) if d.name in raw_order else len(raw_order))
    prov = Provenance(
        hostname=socket.gethostname(),
        kernel=os.uname().release,
        time=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        journey_version=__version__,
        uid=os.geteuid(),
        netns=netns,
        origin="live",
        parts=parts,
    )
    say("done")
    return HostSnapshot(
        provenance=prov,
        interfaces=_tuple(values.get("interfaces")),
        addresses=_tuple(values.get("addresses")),
        routes=_tuple(values.get("routes")),
        rules=_tuple(values.get("rules")),
        neighbours=_tuple(values.get("neighbours")),
        sockets=sockets,
        conntrack=_tuple(values.get("conntrack")),
        sysctls=_mapping(values.get("sysctls")),
        ipsets=_tuple(values.get("ipsets")),
        iptables=tuple(dumps),
        raw=tuple(raw),
    )


def _parts_of(job: str) -> tuple[str, ...]:
    return {
        "links, addresses, routes, rules, neighbours": RTNL_PARTS,
        "sockets": ("sockets",),
        "conntrack": ("conntrack",),
        "sysctls": ("sysctls",),
        "iptables-save": ("iptables-v4-nft",),
        "ip6tables-save": ("iptables-v6-nft",),
        "iptables-legacy-save": ("iptables-v4-legacy",),
        "ip6tables-legacy-save": ("iptables-v6-legacy",),
        "nft": ("nftables",),
        "ipset": ("ipsets",),
        "tc": ("tc",),
    }.get(job, ())


def _tuple(value: object) -> tuple[T, ...]:
    if isinstance(value, tuple | list):
        return tuple(value)
    return ()


def _mapping(value: object) -> dict[str, str]:
    if isinstance(value, dict):
        return value
    return {}
