"""The engine core: a packet's path through the kernel, stage by stage, on a host snapshot.

``walk(snap, packet, flows)`` yields the stages lazily; ``simulate(...)`` runs the walk and
returns the whole ``Journey`` with its verdict and the updated flow table (so a sequence of
packets shares state: SYN then ACK is ESTABLISHED, DNAT applies to later packets, replies are
un-NATed). Besides conntrack entries the flows carry ``RunState``: limit / hashlimit token
buckets (packets of a run are assumed to arrive back-to-back) and the TCP connections a local
listener answered. The answers the local stack sends (SYN-ACK, RST, echo reply) pass conntrack
in OUTPUT and update the flows as they would in the kernel. A lone fragment stops in a
reassembly queue (conntrack's defragmentation, or IP's before INPUT / after INPUT for IPv6).

Paths modelled:
- arriving, for this host: NIC -> XDP -> tc ingress -> ip_rcv checks -> conntrack ->
  PREROUTING -> input routing -> INPUT -> local delivery -> socket lookup;
- arriving, forwarded: ... input routing -> forward checks (forwarding, TTL, MTU) -> FORWARD
  -> POSTROUTING -> neighbour -> egress;
- locally generated: sending socket -> output routing (source selection) -> conntrack ->
  OUTPUT -> reroute -> POSTROUTING -> neighbour -> egress, or loopback -> PREROUTING -> INPUT
  -> local delivery when the destination is this host.
Packets the kernel answers with (RST, ICMP errors, SYN-ACK, echo reply) are in
``Verdict.replies``, each with a local ``Packet`` to follow.

Pure: reads snapshot values, returns values; no I/O, prints nothing, no rich, no textual.
Depends on ``journey.engine.routing`` / ``sysctl`` (policy routing, FIB, sysctls),
``journey.engine.netfilter`` (hooks, rules) and ``journey.engine.conntrack``.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from journey.engine import conntrack as ctm
from journey.engine import routing as rt
from journey.engine import sysctl as sc
from journey.engine.cache import per_snapshot
from journey.engine.netfilter.pipeline import Hook, Pipeline, build_pipeline
from journey.engine.netfilter.walker import HookContext, HookOutcome, run_hook
from journey.engine.replies import (
    describe,
    echo_reply,
    icmp_error,
    reject_reply,
    syn_ack,
    tcp_rst,
)
from journey.engine.sockets import lookup_socket, socket_ref, socket_text
from journey.engine.stages import STAGES
from journey.model.family import Family, IPAddress
from journey.model.journey import (
    Change,
    ConfigRef,
    ConntrackDetail,
    Disposition,
    Flow,
    Journey,
    NeighbourDetail,
    Reply,
    RuleRef,
    RunState,
    SocketDetail,
    SocketRef,
    Stage,
    StageDetail,
    StageKind,
    StageResult,
    Verdict,
)
from journey.model.packet import Packet
from journey.model.snapshot import ConntrackEntry, HostSnapshot, Interface

_NF_HOOK_NAMES = {Hook.PREROUTING: "PRE_ROUTING", Hook.INPUT: "LOCAL_IN", Hook.FORWARD: "FORWARD",
                  Hook.OUTPUT: "LOCAL_OUT", Hook.POSTROUTING: "POST_ROUTING"}

__all__ = ["Walk", "simulate", "walk"]

StageGen = Generator[Stage, None, bool]

_NEIGH_OK = frozenset({"PERMANENT", "REACHABLE", "STALE", "DELAY", "PROBE", "NOARP"})
_CT_MODULES = frozenset({"conntrack", "state", "connmark", "connlimit", "helper",
                         "connbytes", "connlabel"})
_CT_TARGETS = frozenset({"DNAT", "SNAT", "MASQUERADE", "REDIRECT", "NETMAP", "CT", "NOTRACK",
                         "CONNMARK", "CONNSECMARK"})


def _v(value: object) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def changes_between(old: Packet, new: Packet) -> tuple[Change, ...]:
    """Packet fields that differ, as Change values (mark and tos in hex)."""
    out: list[Change] = []
    for name, a, b in old.diff(new):
        if name in ("mark", "tos") and isinstance(a, int) and isinstance(b, int):
            out.append(Change(name, hex(a), hex(b)))
        else:
            out.append(Change(name, _v(a), _v(b)))
    return tuple(out)


@dataclass(slots=True)
class _Fate:
    disposition: Disposition
    code: str
    reason: str
    stage: str
    hint: str | None = None
    egress: str | None = None
    socket: SocketRef | None = None
    uncertain: bool = False


@dataclass(slots=True)
class Walk:
    """One walk of a packet; iterate ``stages()``, then read ``journey()``."""

    snap: HostSnapshot
    packet: Packet
    flows: tuple[ConntrackEntry, ...] = ()
    spec: str = ""
    run: tuple[RunState, ...] = ()  # limit buckets and TCP handshakes of earlier packets
    pkt: Packet = field(init=False)
    orig: Packet = field(init=False)  # the packet as it arrived / was sent, before any change
    pipeline: Pipeline = field(init=False)
    ct: Any = None  # conntrack.CtView | None
    ct_pkt: Packet | None = None  # the packet as conntrack first saw it (for commit)
    ct_in_use: bool = False
    ct_committed: bool = False
    nat: list[Any] = field(default_factory=list)  # NatBinding values of this walk
    rules_hit: list[RuleRef] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    stack_replies: list[int] = field(default_factory=list)  # indexes into replies
    rates: dict[str, int] = field(default_factory=dict)  # limit/hashlimit bucket -> packets
    conns: dict[str, str] = field(default_factory=dict)  # TCP 4-tuple -> RunState kind
    fate: _Fate | None = None
    done: list[Stage] = field(default_factory=list)
    uncertain: bool = False
    follow_replies: bool = True  # walk the kernel's answers through OUTPUT (not for an answer)

    def __post_init__(self) -> None:
        self.pkt = self.packet
        self.orig = self.packet
        self.pipeline = build_pipeline(self.snap)
        self.ct_in_use = conntrack_in_use(self.snap, self.packet.family) or any(
            f.family is self.packet.family for f in self.flows)
        for r in self.run:
            if r.kind in ("limit", "hashlimit"):
                self.rates[r.key] = r.count
            elif r.kind.startswith("tcp-"):
                self.conns[r.key] = r.kind

    # -- helpers ---------------------------------------------------------------------------
    @property
    def fam(self) -> Family:
        return self.pkt.family

    @property
    def v4(self) -> bool:
        return self.pkt.family is Family.IPV4

    def stage(self, key: str, result: StageResult, decision: str, *, kind: StageKind,
              name: str | None = None, config: tuple[ConfigRef, ...] = (),
              changes: tuple[Change, ...] = (), notes: tuple[str, ...] | list[str] = (),
              uncertain: bool = False, detail: StageDetail | None = None,
              hook: str | None = None, functions: tuple[str, ...] | None = None) -> Stage:
        text = STAGES[key]
        if uncertain:
            self.uncertain = True
        s = Stage(
            name=name or text.name, kind=kind, result=result, summary=text.summary,
            decision=decision, packet=self.pkt,
            functions=functions if functions is not None else text.functions(self.fam),
            hook=hook, family="ip" if self.v4 else "ip6", config=tuple(dict.fromkeys(config)),
            changes=changes,
            notes=tuple(notes), uncertain=uncertain, detail=detail,
        )
        self.done.append(s)
        return s

    def end(self, disposition: Disposition, code: str, reason: str, stage: str, *,
            hint: str | None = None, egress: str | None = None,
            socket: SocketRef | None = None, uncertain: bool = False) -> None:
        self.fate = _Fate(disposition, code, reason, stage, hint, egress, socket, uncertain)

    def reply(self, r: Reply | None, *, stack: bool = False) -> None:
        """Record an answer; ``stack``: sent by the local stack (socket layer, ICMP handler)
        after the packet was delivered, so conntrack sees it leave through OUTPUT."""
        if r is not None:
            if stack:
                self.stack_replies.append(len(self.replies))
            self.replies.append(r)

    def route_back_source(self, to: IPAddress | None) -> IPAddress | None:
        """The source the kernel picks for an error it sends to ``to`` (route back)."""
        if to is None:
            return None
        if rt.is_local(self.snap, self.pkt.dst):
            return self.pkt.dst
        probe = Packet(family=self.fam, proto=1 if self.v4 else 58, dst=to, local=True)
        return rt.route_output(self.snap, probe).source

    # -- the walk --------------------------------------------------------------------------
    def stages(self) -> Iterator[Stage]:
        """The stages, lazily; ``self.fate`` is set when the iteration ends."""
        if self.pkt.local:
            yield from self._local_path()
        else:
            yield from self._ingress_path()
        if self.fate is None:
            self.end(Disposition.UNCERTAIN, "uncertain", "the walk ended without a verdict",
                     self.done[-1].name if self.done else "start", uncertain=True)

    def journey(self) -> Journey:
        """The Journey (call after ``stages()`` is exhausted)."""
        if self.fate is None:
            for _ in self.stages():
                pass
        assert self.fate is not None
        f = self.fate
        if self.ct_in_use and not self.ct_committed and self.ct is not None \
                and f.disposition in (Disposition.DELIVERED, Disposition.FORWARDED,
                                      Disposition.SENT):
            self._commit()
        if self.follow_replies and self.replies:
            self._replies_through_output()
        if self.ct_in_use and self.stack_replies:
            self._stack_replies_through_conntrack()
        verdict = Verdict(
            disposition=f.disposition, code=f.code, reason=f.reason, stage=f.stage,
            hint=f.hint, egress=f.egress, socket=f.socket, packet=self.pkt,
            replies=tuple(self.replies), uncertain=f.uncertain,
        )
        return Journey(
            packet=self.packet, spec=self.spec, stages=tuple(self.done), verdict=verdict,
            conntrack=self._ct_detail(), rules_hit=tuple(self.rules_hit),
            flows=(*self.flows, *self._run_state()), family=self.packet.family,
        )

    def _run_state(self) -> tuple[RunState, ...]:
        rates = (RunState(k.split(" ", 1)[0], k, n) for k, n in sorted(self.rates.items()))
        conns = (RunState(kind, k) for k, kind in sorted(self.conns.items()))
        return (*rates, *conns)

    # -- ingress -----------------------------------------------------------------------------
    def _ingress_path(self) -> Iterator[Stage]:
        if not (yield from self._nic()):
            return
        if not (yield from self._xdp_tc("ingress")):
            return
        if not (yield from self._ip_checks()):
            return
        yield from self._conntrack(Hook.PREROUTING)
        if not (yield from self._hook(Hook.PREROUTING, in_iface=self.pkt.iif, out_iface=None)):
            return
        decision = yield from self._input_routing()
        if decision is None:
            return
        kind = str(decision.kind)
        if kind in ("local", "broadcast", "multicast"):
            if self.fragment and self.v4:
                yield from self._held("reassembly")
                return
            if not (yield from self._hook(Hook.INPUT, in_iface=self.pkt.iif, out_iface=None)):
                return
            if self.fragment:
                yield from self._held("reassembly")
                return
            if not (yield from self._confirm()):
                return
            yield from self._local_deliver(dev=self.pkt.iif, broadcast=kind != "local")
            return
        yield from self._forward(decision)

    def _nic(self) -> StageGen:
        notes: list[str] = []
        config: list[ConfigRef] = []
        if self.pkt.iif is None:
            iif = self._infer_iif()
            if iif is None:
                s = self.stage("NIC receive", StageResult.DROPPED,
                               f"no interface leads back to {self.pkt.src}: cannot tell where "
                               "the packet arrives (give 'in IFACE')", kind=StageKind.NIC)
                yield s
                self.end(Disposition.DROPPED, "no-interface",
                         "the spec names no arrival interface and no route leads back to the "
                         "source", s.name, hint="start the spec with 'in IFACE'")
                return False
            notes.append(f"arrival interface inferred from the route back to {self.pkt.src}: "
                         f"{iif}")
            self.pkt = replace(self.pkt, iif=iif)
            self.orig = self.pkt
        name = self.pkt.iif
        assert name is not None
        iface = self.snap.interface(name)
        if iface is None:
            s = self.stage("NIC receive", StageResult.DROPPED, f"there is no interface {name}",
                           kind=StageKind.NIC, notes=notes)
            yield s
            known = ", ".join(i.name for i in self.snap.interfaces) or "none"
            self.end(Disposition.DROPPED, "no-interface", f"interface {name} does not exist in "
                     "the snapshot", s.name, hint=f"interfaces here: {known}")
            return False
        config.append(_iface_ref(iface))
        if not iface.is_up or iface.operstate in ("DOWN", "LOWERLAYERDOWN"):
            s = self.stage("NIC receive", StageResult.DROPPED,
                           f"{name} is down (state {iface.operstate}): nothing is received",
                           kind=StageKind.NIC, config=tuple(config), notes=notes)
            yield s
            self.end(Disposition.DROPPED, "link-down", f"interface {name} is down", s.name,
                     hint=f"ip link set {name} up")
            return False
        changes: list[Change] = []
        if self.pkt.vlan is not None:
            vif = next((i for i in self.snap.interfaces if i.kind == "vlan" and i.link == name
                        and i.vlan_id == self.pkt.vlan), None)
            if vif is None:
                s = self.stage("NIC receive", StageResult.DROPPED,
                               f"the frame carries VLAN tag {self.pkt.vlan} and {name} has no "
                               f"VLAN {self.pkt.vlan} interface: dropped",
                               kind=StageKind.NIC, config=tuple(config), notes=notes)
                yield s
                self.end(Disposition.DROPPED, "no-interface",
                         f"no VLAN {self.pkt.vlan} interface on {name}", s.name,
                         hint=f"ip link add link {name} name {name}.{self.pkt.vlan} type vlan id "
                              f"{self.pkt.vlan}")
                return False
            if not vif.is_up:
                s = self.stage("NIC receive", StageResult.DROPPED, f"VLAN interface {vif.name} is down",
                               kind=StageKind.NIC, config=(*config, _iface_ref(vif)), notes=notes)
                yield s
                self.end(Disposition.DROPPED, "link-down", f"interface {vif.name} is down",
                         s.name, hint=f"ip link set {vif.name} up")
                return False
            config.append(_iface_ref(vif))
            changes.append(Change("iif", name, vif.name))
            iface = vif
        bridged_uncertain = False
        mac_decision = self._mac_check(iface, notes)
        if mac_decision is None:
            s = self.stage("NIC receive", StageResult.DROPPED,
                           f"destination MAC {self.pkt.dst_mac} is neither {iface.name}'s "
                           f"({iface.mac or 'unknown'}) nor broadcast/multicast: the frame is "
                           "for another host (PACKET_OTHERHOST) and IP drops it",
                           kind=StageKind.NIC, config=tuple(config), notes=notes)
            yield s
            self.end(Disposition.DROPPED, "not-for-us",
                     f"the frame is addressed to another host's MAC ({self.pkt.dst_mac})", s.name)
            return False
        if iface.master:
            master = self.snap.interface(iface.master)
            if master is not None and master.kind == "bridge":
                notes.append(f"{iface.name} is a port of bridge {master.name}: the frame is "
                             f"bridged, and reaches IP on {master.name} when addressed to the "
                             "bridge (bridge forwarding and br_netfilter are not modelled)")
                changes.append(Change("iif", iface.name, master.name))
                iface = master
                config.append(_iface_ref(master))
                bridge_chains = _bridge_family_chains(self.snap)
                if bridge_chains:
                    notes.append(f"bridge-family nft chains ({', '.join(bridge_chains)}) see this "
                                 "frame before IP does; journey does not evaluate bridge-family "
                                 "chains, so whether they pass it is not known")
                    self.uncertain = True
                    bridged_uncertain = True
            elif master is not None and master.kind == "vrf":
                notes.append(f"{iface.name} is enslaved to VRF {master.name}: routing uses its "
                             "table (l3mdev)")
        if changes:
            self.pkt = replace(self.pkt, iif=iface.name)
        result = StageResult.CHANGED if changes else StageResult.PASSED
        if bridged_uncertain:
            result = StageResult.UNCERTAIN
        s = self.stage("NIC receive", result,
                       f"received on {iface.name} (up); {mac_decision}", kind=StageKind.NIC,
                       config=tuple(config), changes=tuple(changes), notes=notes,
                       uncertain=bridged_uncertain)
        yield s
        return True

    def _mac_check(self, iface: Interface, notes: list[str]) -> str | None:
        mac = self.pkt.dst_mac
        if mac is None:
            return "frame addressed to the interface's MAC (assumed: the spec gives no 'mac')"
        if mac == "ff:ff:ff:ff:ff:ff":
            return "broadcast frame"
        if int(mac.split(":")[0], 16) & 1:
            return "multicast frame"
        if iface.mac is None:
            notes.append(f"the snapshot has no MAC for {iface.name}: assumed the frame is ours")
            return f"destination MAC {mac} (interface MAC unknown)"
        if mac == iface.mac.lower():
            return f"destination MAC {mac} is the interface's own"
        # macvlan children sharing the parent: a frame for a macvlan's MAC goes to it
        for child in self.snap.interfaces:
            if child.link == iface.name and child.kind == "macvlan" and child.mac \
                    and child.mac.lower() == mac:
                notes.append(f"MAC {mac} belongs to macvlan {child.name} on {iface.name}")
                self.pkt = replace(self.pkt, iif=child.name)
                return f"destination MAC {mac} is macvlan {child.name}'s"
        return None

    def _infer_iif(self) -> str | None:
        src = self.pkt.src
        if src is None:
            return None
        try:
            dec = rt.fib_lookup(self.snap, family=self.fam, dst=src)
        except Exception:
            return None
        oif = getattr(dec, "oif", None)
        return str(oif) if oif else None

    def _xdp_tc(self, direction: str) -> StageGen:
        ifname = self.pkt.iif if direction == "ingress" else None
        if ifname is None:
            return True
        iface = self.snap.interface(ifname)
        if iface is not None and iface.xdp:
            s = self.stage("XDP", StageResult.UNCERTAIN,
                           f"XDP program attached to {ifname} ({iface.xdp}): its verdict is not "
                           "modelled; assumed XDP_PASS", kind=StageKind.TC,
                           config=(ConfigRef("interface", f"{ifname}: xdp {iface.xdp}", ifname),),
                           uncertain=True)
            yield s
        tc = tc_info(self.snap, ifname, direction)
        if tc is not None:
            yield tc.stage(self)
        if direction == "ingress":
            return (yield from self._nf_ingress(ifname))
        return True

    def _nf_ingress(self, ifname: str) -> StageGen:
        """netdev / inet ``ingress`` chains: nf_ingress() runs right after tc ingress."""
        from journey.engine.netfilter.nft_eval import run_netdev_ingress

        for s in run_netdev_ingress(self.snap, self.pkt, ifname):
            self.done.append(s)
            if s.uncertain:
                self.uncertain = True
            if s.packet is not None:
                self.pkt = s.packet
            self.rules_hit.extend(RuleRef(r.table, r.chain, r.index, r.backend or "native",
                                          r.handle) for r in s.rules if r.matched)
            yield s
            if s.result is StageResult.DROPPED:
                self.end(Disposition.DROPPED, "filter-drop", f"dropped at ingress: {s.decision}",
                         s.name, uncertain=s.uncertain)
                return False
        return True

    def _ip_checks(self) -> StageGen:
        p = self.pkt
        problems: list[str] = []
        version = p.version if p.version is not None else self.fam.version
        if version != self.fam.version:
            problems.append(f"IP version field is {version}, not {self.fam.version}")
        if self.v4 and p.ihl < 5:
            problems.append(f"header length {p.ihl * 4} bytes is below the minimum 20")
        if p.checksum_ok is False:
            problems.append("the header checksum is wrong")
        hdr = 20 if self.v4 else 40
        if p.length is not None and p.length < hdr:
            problems.append(f"total length {p.length} is shorter than the {hdr}-byte header")
        if not self.v4 and p.src is not None and p.src.is_multicast:
            problems.append("IPv6 source address is multicast")
        if not self.v4 and p.dst.is_loopback and p.iif != "lo":
            problems.append("destination ::1 arrived on a non-loopback interface")
        notes: list[str] = []
        if p.checksum_ok is None and self.v4:
            notes.append("checksum not known for a crafted packet: assumed correct")
        if p.ttl == 0:
            notes.append("TTL 0 is not checked on receive: it matters only when forwarding")
        if problems:
            s = self.stage("IP header checks", StageResult.DROPPED, "; ".join(problems),
                           kind=StageKind.IP_CHECKS, notes=notes)
            yield s
            counter = "Ip.InHdrErrors" if p.checksum_ok is not False else "Ip.InCsumErrors"
            self.end(Disposition.DROPPED, "bad-header", "invalid IP header: " + problems[0],
                     s.name, hint=f"the kernel counts it in {counter}" if self.v4 else None)
            return False
        if self.fragment:
            notes.append("a fragment: " + ("conntrack's defragmentation (priority -400) holds it "
                                           "until the whole datagram arrives" if self.ct_in_use
                                           else "reassembled at local delivery; forwarded as is"))
        s = self.stage("IP header checks", StageResult.PASSED,
                       f"valid IPv{self.fam.version} header, {describe(p)}, "
                       f"{'TTL' if self.v4 else 'hop limit'} {p.ttl}, {p.ip_length} bytes",
                       kind=StageKind.IP_CHECKS, notes=notes)
        yield s
        if self.fragment and self.ct_in_use:
            yield from self._held("defragmentation", Hook.PREROUTING)
            return False
        return True

    @property
    def fragment(self) -> bool:
        """A lone fragment: non-first, or first with more-fragments (the rest is not traced)."""
        return bool(self.pkt.frag_offset or self.pkt.more_fragments)

    def _held(self, key: str, hook: Hook | None = None) -> Iterator[Stage]:
        """A lone fragment stops in a reassembly queue: the datagram never completes here."""
        which = ("non-first fragment (offset " f"{self.pkt.frag_offset})" if self.pkt.frag_offset
                 else "first fragment (more-fragments set)")
        if key == "defragmentation":
            where = (f"conntrack is in use: nf_defrag at {hook.chain_name if hook else ''} "
                     "priority -400, before every table, queues the "
                     f"{which} until its datagram is whole; no rule sees it")
        elif self.v4:
            where = (f"IPv4 reassembles before the INPUT hook (ip_local_deliver -> ip_defrag): "
                     f"the {which} waits in the queue; no INPUT rule sees it")
        else:
            where = (f"IPv6 reassembles after the INPUT hook (the fragment header is handled as "
                     f"a protocol, ipv6_frag_rcv): the {which} waits in the queue")
        s = self.stage(key, StageResult.DROPPED, where,
                       kind=StageKind.IP_CHECKS if key == "defragmentation" else StageKind.LOCAL_IN,
                       notes=("the other fragments of the datagram are not in this trace; if "
                              "they never come the queue times out (ipfrag_time, 30 s) and an "
                              "ICMP time exceeded (reassembly) may be sent for a first fragment",),
                       hook=str(hook) if hook is not None else None)
        yield s
        self.end(Disposition.DROPPED, "reassembly", "held for reassembly; the other fragments "
                 "are not in this trace", s.name,
                 hint="trace the whole datagram instead of one fragment")

    # -- conntrack ---------------------------------------------------------------------------
    def _conntrack(self, hook: Hook) -> Iterator[Stage]:
        if not self.ct_in_use:
            self.ct = None
            yield self.stage("conntrack", StageResult.SKIPPED,
                             "connection tracking is not in use on this host (no rule uses "
                             "state or NAT, and the snapshot holds no connections): the packet "
                             "is not tracked", kind=StageKind.CONNTRACK, hook=str(hook))
            return
        view = ctm.ct_lookup(self.snap, self.flows, self.pkt)
        self.ct = view
        self.ct_pkt = self.pkt
        state = str(getattr(view, "state", "NEW"))
        detail = self._ct_detail()
        reason = getattr(view, "reason", "") or ""
        decision = f"{state.upper()}" + (f" ({getattr(view, 'direction', '')} direction)"
                                         if getattr(view, "direction", None) else "")
        if reason:
            decision += f": {reason}"
        notes = ["conntrack runs at priority -200, after the raw table (which can exempt the "
                 "packet with NOTRACK)"]
        uncertain = bool(getattr(view, "uncertain", False))
        yield self.stage("conntrack", StageResult.UNCERTAIN if uncertain else StageResult.PASSED,
                         decision, kind=StageKind.CONNTRACK, detail=detail, notes=notes,
                         uncertain=uncertain, hook=str(hook))

    def _ct_detail(self) -> ConntrackDetail | None:
        view = self.ct
        if view is None:
            return None
        to_detail = getattr(view, "detail", None)
        if callable(to_detail):
            d = to_detail()
            if isinstance(d, ConntrackDetail):
                return d
        if isinstance(to_detail, ConntrackDetail):
            return to_detail
        entry = getattr(view, "entry", None)
        orig = reply = None
        if entry is not None:
            orig, reply = _tuple_text(entry.proto, entry.orig), _tuple_text(entry.proto, entry.reply)
        nat = None
        if self.nat:
            nat = "; ".join(str(getattr(b, "text", b)) for b in self.nat)
        direction = getattr(view, "direction", None)
        return ConntrackDetail(state=str(getattr(view, "state", "NEW")).upper(),
                               direction=str(direction) if direction else None, orig=orig,
                               reply=reply, nat=nat, source=getattr(view, "source", None))

    def _confirm(self) -> Generator[Stage, None, bool]:
        """``__nf_conntrack_confirm`` at the end of POSTROUTING / INPUT: a NEW NATed flow whose
        reply tuple another flow already uses gets another port when the binding allows one
        (random for source NAT: uncertain), else its entry clashes and the packet is dropped."""
        view = self.ct
        if (view is not None and not self.ct_committed and self.ct_pkt is not None and self.nat
                and view.nat_pending):
            other = ctm.nat_clash(self.snap, self.flows, view, self.ct_pkt, self.pkt)
            if other is not None:
                b = self.nat[-1]
                ports = getattr(b, "ports", None)
                src = getattr(b, "manip", "") == "src"
                has_ports = self.pkt.proto in (6, 17, 132, 33, 136) or (
                    src and self.pkt.proto in (1, 58))
                fixed = ports is not None and ports[0] == ports[1]
                what = (f"the reply tuple of this flow is already used by "
                        f"{ctm.tuple_text(other.proto, other.orig)}")
                if has_ports and not fixed and (src or ports is not None):
                    s = self.stage("conntrack", StageResult.UNCERTAIN,
                                   f"{what}: get_unique_tuple picks another "
                                   f"{'ICMP id' if self.pkt.proto in (1, 58) else 'port'} "
                                   f"{'at random ' if src else ''}(the one shown is not it)",
                                   kind=StageKind.CONNTRACK, name="conntrack confirm",
                                   uncertain=True, functions=("get_unique_tuple",
                                                              "nf_nat_l4proto_unique_tuple"))
                    yield s
                else:
                    s = self.stage("conntrack", StageResult.DROPPED,
                                   f"{what}, and {b.kind} leaves no other port to try: the new "
                                   "entry clashes at confirm and the packet is dropped "
                                   "(conntrack insert_failed)",
                                   kind=StageKind.CONNTRACK, name="conntrack confirm",
                                   functions=("__nf_conntrack_confirm", "nf_ct_resolve_clash"))
                    yield s
                    self.end(Disposition.DROPPED, "nat-clash",
                             f"{b.kind}: {what}; the entry cannot be confirmed",
                             "conntrack confirm")
                    return False
        self._commit()
        return True

    def _commit(self) -> None:
        if self.ct is None or self.ct_committed or self.ct_pkt is None:
            return
        nat = self.nat[0] if self.nat else None
        before = self.flows
        self.flows = tuple(ctm.ct_commit(self.ct, self.ct_pkt, self.pkt, nat, self.flows))
        self.ct_committed = True
        if self.ct.nat_pending and self.flows and self.flows is not before:
            # confirmed: for the rest of this walk (loopback PREROUTING/INPUT) it is an
            # existing flow whose NAT is already decided
            self.ct = replace(self.ct, source="flow", entry=self.flows[0])

    def _replies_through_output(self) -> None:
        """The kernel's answers (SYN-ACK, RST, ICMP errors, echo replies) leave like local
        packets: output routing, OUTPUT and POSTROUTING. An answer a netfilter rule drops there
        never leaves (a SYN-ACK is retransmitted by the timer and dropped again); a refusal whose
        every answer is dropped is a silent drop. The answer's own rule hits are not the
        packet's: only the outcome is kept."""
        assert self.fate is not None
        kept: list[Reply] = []
        remap: dict[int, int] = {}
        lost: list[str] = []
        for i, r in enumerate(self.replies):
            if r.packet is not None:
                sub = Walk(self.snap, r.packet, self.flows, "", (), follow_replies=False)
                for _ in sub.stages():
                    pass
                f = sub.fate
                if f is not None and f.code in ("filter-drop", "reject"):
                    lost.append(f"its {r.kind} answer is {f.reason} (stage {f.stage})")
                    if f.uncertain or sub.uncertain:
                        self.fate.uncertain = True
                    continue
            remap[i] = len(kept)
            kept.append(r)
        if not lost:
            return
        self.stack_replies = [remap[i] for i in self.stack_replies if i in remap]
        self.replies = kept
        f = self.fate
        f.reason = f"{f.reason}; " + "; ".join(lost)
        if f.disposition is Disposition.REJECTED and not kept:
            f.disposition = Disposition.DROPPED
        self.uncertain = self.uncertain or f.uncertain

    def _stack_replies_through_conntrack(self) -> None:
        """The answers the local stack sent (SYN-ACK, RST, echo reply) pass conntrack in OUTPUT
        in the reply direction of the flow this packet confirmed: record that in the flows."""
        zone = self.ct.zone if self.ct is not None else 0
        for i in self.stack_replies:
            r = self.replies[i]
            if r.packet is None:
                continue
            flows, note = ctm.ct_host_reply(self.snap, self.flows, r.packet, zone=zone)
            self.flows = flows
            if note is not None:
                self.replies[i] = replace(r, reason=f"{r.reason}; {note}")
        self.stack_replies.clear()

    # -- netfilter hooks ---------------------------------------------------------------------
    def _hook(self, hook: Hook, *, in_iface: str | None, out_iface: str | None,
              local: bool = False) -> StageGen:
        ctx = HookContext(hook=hook, in_iface=in_iface, out_iface=out_iface, ct=self.ct,
                          local=local, flows=self.flows, rates=self.rates)
        outcome: HookOutcome = run_hook(self.snap, self.pipeline, self.pkt, ctx)
        if not outcome.stages:
            # No base chain on this hook: the hook still exists on the path, it just has
            # nothing registered. Shown (skipped) so the journey reads as the kernel's path.
            empty = Stage(
                name=f"{hook.chain_name} hook", kind=StageKind.NETFILTER,
                result=StageResult.SKIPPED,
                summary=(f"The {hook.chain_name} netfilter hook runs every base chain registered "
                         "on it (iptables tables, nft chains) in priority order."),
                decision=(f"no chain is registered at {hook.chain_name} for "
                          f"{self.pkt.family.name.replace('IPV', 'IPv')}: the packet passes "
                          "unchanged"),
                packet=self.pkt, hook=str(hook),
                functions=(f"NF_HOOK(NF_INET_{_NF_HOOK_NAMES[hook]})",))
            self.done.append(empty)
            yield empty
        for s in outcome.stages:
            self.done.append(s)
            if s.uncertain:
                self.uncertain = True
            yield s
        self.pkt = outcome.packet
        if outcome.nat is not None:
            self.nat.append(outcome.nat)
        self.rules_hit.extend(outcome.rules_hit)
        if self.ct is not None and outcome.ct is not None:
            self.ct = outcome.ct  # NOTRACK, NAT binding, connmark
        verdict = str(outcome.verdict)
        last = outcome.stages[-1].name if outcome.stages else f"{hook.chain_name}"
        who = _rule_name(outcome.decided_by) or f"the chain policy of {last} (no rule decided)"
        if verdict == "accept":
            return True
        if verdict == "drop":
            reason = f"dropped by {who}"
            hint = None
            if self.pkt.local:
                reason += "; the sending process gets EPERM"
            self.end(Disposition.DROPPED, "filter-drop", reason, last, hint=hint,
                     uncertain=bool(outcome.uncertain))
            return False
        if verdict == "reject":
            with_ = getattr(outcome.reject, "with_", None) if outcome.reject is not None else None
            quoted = self.orig_quoted()
            r, kind = reject_reply(self.pkt, with_, icmp_src=self.route_back_source(self.pkt.src),
                                   quoted=quoted)
            if self.pkt.local and hook is Hook.OUTPUT:
                reason = (f"rejected by {who} ({kind}): sendmsg()/connect() fails with EPERM, "
                          "and the ICMP error is delivered to this host through lo")
            else:
                reason = f"rejected by {who} ({kind})"
            self.reply(r)
            self.end(Disposition.REJECTED, "reject", reason, last,
                     uncertain=bool(outcome.uncertain))
            return False
        if verdict == "queue":
            self.end(Disposition.UNCERTAIN, "queued", f"queued to userspace by {who} (NFQUEUE): "
                     "the program's verdict is not known", last, uncertain=True)
            return False
        self.end(Disposition.UNCERTAIN, "uncertain", f"{who} took the packet ({verdict})", last,
                 uncertain=True)
        return False

    # -- routing -----------------------------------------------------------------------------
    def _input_routing(self) -> Generator[Stage, None, Any]:
        dec = rt.route_input(self.snap, self.pkt)
        kind = str(dec.kind)
        name = "input routing"
        result = StageResult.PASSED
        ok = kind in ("local", "unicast", "broadcast", "multicast", "forwarding-disabled")
        if not ok:
            result = StageResult.DROPPED
        elif dec.uncertain:
            result = StageResult.UNCERTAIN
        decision = _route_decision_text(dec)
        if kind == "forwarding-disabled":
            decision = (f"not for this host: would be forwarded{_oif_text(dec)}, but forwarding "
                        "is off (see forward checks)")
        yield self.stage(name, result, decision, kind=StageKind.ROUTING,
                         config=tuple(dec.config), notes=tuple(dec.notes),
                         uncertain=bool(dec.uncertain), detail=dec.detail)
        if ok:
            return dec
        self._route_failure(dec, name, forwarded=True)
        return None

    def _route_failure(self, dec: Any, stage: str, *, forwarded: bool) -> None:
        kind = str(dec.kind)
        p = self.pkt
        errno = getattr(dec, "errno", None)
        local_note = ""
        if p.local:
            local_note = f"; the sending process gets {errno}" if errno else ""
        ifname = p.iif or "IFACE"
        table = {
            "blackhole": ("blackhole", f"a blackhole route discards packets to {p.dst} silently",
                          None, None),
            "unreachable": ("unreachable-route", f"an unreachable route covers {p.dst}",
                            "host-unreachable", None),
            "prohibit": ("prohibit-route", f"a prohibit route covers {p.dst}", "admin-prohibited",
                         None),
            "no-route": ("no-route", f"no route to {p.dst} in the tables the policy rules "
                         "consulted", "net-unreachable",
                         f"add a route: ip route add {_net_hint(p.dst)} via GATEWAY"),
            "rp-filter": ("rp-filter", f"reverse-path filter: the route back to {p.src} does not "
                          f"leave through {p.iif}",
                          None, f"sysctl -w net.ipv4.conf.{ifname}.rp_filter=2 (loose), or add "
                                f"a route to {p.src} via {p.iif}"),
            "martian-source": ("martian-source", f"martian source address {p.src}", None,
                               f"sysctl -w net.ipv4.conf.{ifname}.log_martians=1 shows them in "
                               "the kernel log"),
            "martian-destination": ("martian-destination", f"martian destination address "
                                    f"{p.dst}", None, None),
        }
        code, reason, icmp, hint = table.get(kind, ("uncertain", f"routing result {kind}", None,
                                                     None))
        if getattr(dec, "reason", ""):
            reason = f"{reason}: {dec.reason}" if dec.reason not in reason else reason
        if icmp is not None:
            if p.local:
                reason += local_note or "; the sending process gets an error"
            elif not self.v4 and kind == "unreachable":
                self.reply(icmp_error(p, "no-route", src=self.route_back_source(p.src)))
            else:
                self.reply(icmp_error(self.orig_quoted(), icmp,
                                      src=self.route_back_source(p.src), quoted=self.orig_quoted()))
        elif p.local:
            reason += local_note
        self.end(Disposition.DROPPED, code, reason, stage, hint=hint,
                 uncertain=bool(dec.uncertain) or code == "uncertain")

    def _redirect_nat_drop(self) -> str:
        """Why NAT drops the ICMP redirect this forwarded packet provokes ('' if it does not).

        The redirect is RELATED to the packet's flow; with nat hooks registered,
        ``nf_nat_icmp_reply_translation`` drops a redirect whose flow has NAT or whose NAT is
        not finished yet (the first packet, before POSTROUTING): counted in Icmp.OutRedirects
        and Ip.OutDiscards, never sent."""
        view = self.ct
        if view is None or view.state in (ctm.CtState.UNTRACKED, ctm.CtState.INVALID):
            return ""
        if not any(b.kind == "nat" and b.family is self.fam for b in self.pipeline.all_chains()):
            return ""
        if view.nat_pending:
            return ("the ICMP redirect the kernel builds is dropped by NAT: the flow's NAT is "
                    "not finished before POSTROUTING (nf_nat_icmp_reply_translation)")
        if view.entry is not None and any(ctm.entry_has_nat(view.entry)):
            return ("the ICMP redirect the kernel builds is dropped by NAT: its flow is NATed "
                    "(nf_nat_icmp_reply_translation)")
        return ""

    def orig_quoted(self) -> Packet:
        """The current packet translated back to its original addresses (what ICMP quotes)."""
        o = self.orig
        return replace(self.pkt, src=o.src, dst=o.dst, sport=o.sport, dport=o.dport)

    # -- local delivery ----------------------------------------------------------------------
    def _local_deliver(self, *, dev: str | None, broadcast: bool = False) -> Iterator[Stage]:
        p = self.pkt
        names = {6: "TCP", 17: "UDP", 1: "ICMP", 58: "ICMPv6", 132: "SCTP"}
        proto = names.get(p.proto, f"protocol {p.proto}")
        notes: list[str] = []
        yield self.stage("local delivery", StageResult.PASSED,
                         f"for this host: handed to {proto}", kind=StageKind.LOCAL_IN,
                         notes=notes)
        if p.proto in (6, 17):
            yield from self._socket(dev=dev, broadcast=broadcast)
        elif p.proto in (1, 58):
            yield from self._icmp_local(broadcast=broadcast)
        else:
            s = self.stage("socket lookup", StageResult.UNCERTAIN,
                           f"{proto}: raw sockets and protocol modules are not in the snapshot",
                           kind=StageKind.SOCKET, uncertain=True, functions=())
            yield s
            self.end(Disposition.UNCERTAIN, "uncertain",
                     f"delivered to the {proto} handler if one is loaded; otherwise the kernel "
                     "answers ICMP protocol unreachable", s.name, uncertain=True)

    def _icmp_local(self, *, broadcast: bool = False) -> Iterator[Stage]:
        p = self.pkt
        funcs = ("icmp_rcv", "icmp_echo") if self.v4 else ("icmpv6_rcv", "icmpv6_echo_reply")
        echo = p.icmp_type == (8 if self.v4 else 128)
        if echo:
            key = "net.ipv4.icmp_echo_ignore_all" if self.v4 else "net.ipv6.icmp.echo_ignore_all"
            bkey = "net.ipv4.icmp_echo_ignore_broadcasts"
            ignore = self.snap.sysctl(key, "0") == "1"
            cfg = [ConfigRef("sysctl", f"{key} = {self.snap.sysctl(key, '0')}", key)]
            # the route's type decides (RTCF_BROADCAST): a subnet broadcast has a broadcast
            # route in table local even when the address was added without ``brd``
            if self.v4 and not ignore and (broadcast or p.dst.is_multicast
                                           or _is_broadcast(self.snap, p.dst)):
                ignore = self.snap.sysctl(bkey, "1") == "1"
                cfg.append(ConfigRef("sysctl", f"{bkey} = {self.snap.sysctl(bkey, '1')}", bkey))
            if ignore:
                s = self.stage("socket lookup", StageResult.DROPPED,
                               "echo requests are ignored by sysctl", name="ICMP handler",
                               kind=StageKind.SOCKET, config=tuple(cfg), functions=funcs)
                yield s
                self.end(Disposition.DROPPED, "icmp-ignored", "the kernel ignores echo requests "
                         f"({cfg[-1].text})", s.name, hint=f"sysctl -w {cfg[-1].where}=0")
                return
            self.reply(echo_reply(p), stack=True)
            s = self.stage("socket lookup", StageResult.DELIVERED,
                           "the kernel's ICMP handler answers the echo request",
                           name="ICMP handler", kind=StageKind.SOCKET, config=tuple(cfg),
                           functions=funcs)
            yield s
            self.end(Disposition.DELIVERED, "delivered", "delivered to the kernel's ICMP "
                     "handler, which sends an echo reply", s.name)
            return
        s = self.stage("socket lookup", StageResult.DELIVERED,
                       f"ICMP type {p.icmp_type} code {p.icmp_code} handled by the kernel "
                       "(and raw ICMP sockets, which the snapshot does not list)",
                       name="ICMP handler", kind=StageKind.SOCKET, functions=funcs[:1])
        yield s
        self.end(Disposition.DELIVERED, "delivered", "delivered to the kernel's ICMP handler",
                 s.name)

    def _socket(self, *, dev: str | None, broadcast: bool) -> Iterator[Stage]:
        p = self.pkt
        tcp = p.proto == 6
        funcs: tuple[str, ...]
        if tcp:
            funcs = ("tcp_v4_rcv", "__inet_lookup_skb") if self.v4 else ("tcp_v6_rcv",
                                                                          "__inet6_lookup_skb")
        else:
            funcs = ("udp_rcv", "__udp4_lib_lookup") if self.v4 else ("udpv6_rcv",
                                                                       "__udp6_lib_lookup")
        m = lookup_socket(self.snap, p, dev=dev)
        notes = list(m.notes)
        if self.snap.provenance.part("sockets") is not None and \
                str(self.snap.provenance.part("sockets").state) != "collected":  # type: ignore[union-attr]
            notes.append("sockets were not fully collected in this snapshot")
            m = replace(m, uncertain=True)
        detail: StageDetail = m.detail
        if m.socket is None:
            if tcp and "R" in p.tcp_flags:
                s = self.stage("socket lookup", StageResult.DROPPED,
                               f"no socket for TCP port {p.dport}; a RST is never answered",
                               kind=StageKind.SOCKET, functions=funcs, detail=detail,
                               notes=notes, uncertain=m.uncertain)
                yield s
                self.end(Disposition.DROPPED, "no-socket", f"no socket on TCP port {p.dport} "
                         "(the RST is discarded)", s.name, uncertain=m.uncertain)
                return
            if tcp:
                self.reply(tcp_rst(p, reason="no socket: the kernel answers with a TCP reset"),
                           stack=True)
                what = "the kernel answers with a TCP RST"
            elif broadcast or p.dst.is_multicast:
                what = "broadcast/multicast: no ICMP error is sent"
            else:
                self.reply(icmp_error(p, "port-unreachable", src=p.dst,
                                      quoted=self.orig_quoted(),
                                      reason="no socket: ICMP port unreachable"), stack=True)
                what = "the kernel answers with ICMP port unreachable"
            s = self.stage("socket lookup", StageResult.DROPPED,
                           f"no socket listens on {'TCP' if tcp else 'UDP'} port {p.dport} "
                           f"for {p.dst}: {what}", kind=StageKind.SOCKET, functions=funcs,
                           detail=detail, notes=notes, uncertain=m.uncertain)
            yield s
            hint = (f"start a service listening on port {p.dport}, or check the address it "
                    "binds to")
            disp = Disposition.DROPPED if (not tcp and (broadcast or p.dst.is_multicast)) \
                else Disposition.REJECTED
            self.end(disp, "no-socket", f"no socket on {'TCP' if tcp else 'UDP'} port "
                     f"{p.dport}: {what}", s.name, hint=hint, uncertain=m.uncertain)
            return
        sock = m.socket
        ref = socket_ref(sock)
        proc = f" (process {ref.process}, pid {ref.pid})" if ref.process else ""
        if tcp and m.how == "listener":
            flags = p.tcp_flags
            key = _conn_key(p)
            pending = self.conns.get(key)
            if pending is not None and "S" not in flags:
                yield from self._run_connection(p, pending, sock, funcs, detail, notes)
                return
            if "S" in flags and "A" not in flags and "R" not in flags:
                if "F" in flags:
                    notes.append("SYN+FIN: conntrack calls this INVALID; the listener would still "
                                 "treat it as a SYN")
                self.reply(syn_ack(p), stack=True)
                if pending is None:
                    self.conns[key] = "tcp-syn-recv"
                s = self.stage("socket lookup", StageResult.DELIVERED,
                               f"listening socket {socket_text(sock)}{proc} takes the SYN and "
                               "answers SYN-ACK", kind=StageKind.SOCKET, functions=funcs,
                               detail=detail, notes=notes, uncertain=m.uncertain)
                yield s
                self.end(Disposition.DELIVERED, "delivered", "a listening socket accepts the "
                         f"connection attempt{proc}", s.name, socket=ref, uncertain=m.uncertain)
                return
            if "R" in flags:
                s = self.stage("socket lookup", StageResult.DROPPED,
                               f"a RST for listening socket {socket_text(sock)} with no "
                               "connection: discarded", kind=StageKind.SOCKET, functions=funcs,
                               detail=detail, notes=notes)
                yield s
                self.end(Disposition.DROPPED, "no-connection", "a RST that matches no "
                         "connection is discarded", s.name, socket=ref)
                return
            self.reply(tcp_rst(p, reason="segment for a listener without a connection"),
                       stack=True)
            if self.snap.sysctl("net.ipv4.tcp_syncookies", "1") != "0" and "A" in flags:
                notes.append("with SYN cookies a valid cookie ACK would create the connection; "
                             "a crafted ACK is assumed invalid")
            s = self.stage("socket lookup", StageResult.DROPPED,
                           f"only the listening socket {socket_text(sock)} matches and the "
                           f"segment ({flags or 'no flags'}) is not a SYN: the kernel answers RST",
                           kind=StageKind.SOCKET, functions=funcs, detail=detail, notes=notes,
                           uncertain=True)
            yield s
            self.end(Disposition.REJECTED, "no-connection", "no connection matches this "
                     "segment; the listener answers with a RST", s.name, socket=ref,
                     uncertain=True)
            return
        if tcp and m.how == "established" and "S" in p.tcp_flags and "R" not in p.tcp_flags \
                and sock.state not in ("SYN-SENT", "TIME-WAIT"):
            # tcp_validate_incoming: a SYN on a synchronized connection, in window or not
            notes.append("the challenge ACK goes to the packet's source (rate-limited per socket "
                         "by net.ipv4.tcp_invalid_ratelimit): not listed as a reply")
            s = self.stage("socket lookup", StageResult.DROPPED,
                           f"the established connection {socket_text(sock)}{proc} takes the SYN: "
                           "a SYN on a synchronized connection is answered with a challenge ACK "
                           "and discarded", kind=StageKind.SOCKET,
                           functions=(*funcs, "tcp_validate_incoming", "tcp_send_challenge_ack"),
                           detail=detail, notes=notes, uncertain=m.uncertain)
            yield s
            self.end(Disposition.DROPPED, "challenge-ack", "a SYN for an established "
                     "connection: the kernel answers a challenge ACK and discards it", s.name,
                     socket=ref, uncertain=m.uncertain)
            return
        if tcp and m.how == "established":
            notes.append("the connection's sequence numbers are not in the snapshot: the "
                         "segment is assumed in window (else the kernel answers a duplicate ACK "
                         "and discards it)")
        s = self.stage("socket lookup", StageResult.DELIVERED,
                       f"{m.how} socket {socket_text(sock)}{proc} receives it",
                       kind=StageKind.SOCKET, functions=funcs, detail=detail, notes=notes,
                       uncertain=m.uncertain)
        yield s
        self.end(Disposition.DELIVERED, "delivered", f"delivered to {m.how} socket "
                 f"{sock.proto} {ref.addr}:{ref.port}{proc}", s.name, socket=ref,
                 uncertain=m.uncertain)

    def _run_connection(self, p: Packet, kind: str, sock: Any, funcs: tuple[str, ...],
                        detail: StageDetail, notes: list[str]) -> Iterator[Stage]:
        """A segment for a connection a listener answered earlier in this run: the request
        socket (SYN-ACK sent) or the connection its ACK created (``tcp_check_req``)."""
        ref = socket_ref(sock)
        key = _conn_key(p)
        flags = p.tcp_flags
        notes = [*notes, "the connection was opened by an earlier packet of this run; sequence "
                         "numbers are not modelled (the segment is assumed in window)"]
        if "R" in flags:
            del self.conns[key]
            what = ("the pending connection (request socket) is dropped" if kind == "tcp-syn-recv"
                    else "the connection is reset")
            s = self.stage("socket lookup", StageResult.DELIVERED,
                           f"a RST for the connection {describe(p)} of {socket_text(sock)}: {what}",
                           kind=StageKind.SOCKET, functions=funcs, detail=detail, notes=notes)
            yield s
            self.end(Disposition.DELIVERED, "delivered", f"RST taken by the connection: {what}",
                     s.name, socket=ref)
            return
        if kind == "tcp-syn-recv":
            if "A" not in flags:
                s = self.stage("socket lookup", StageResult.DROPPED,
                               f"a segment without ACK ({flags or 'no flags'}) for the pending "
                               f"connection of {socket_text(sock)}: discarded (tcp_check_req)",
                               kind=StageKind.SOCKET, functions=funcs, detail=detail, notes=notes)
                yield s
                self.end(Disposition.DROPPED, "no-connection", "a segment without ACK does not "
                         "complete the handshake", s.name, socket=ref)
                return
            self.conns[key] = "tcp-established"
            s = self.stage("socket lookup", StageResult.DELIVERED,
                           f"the ACK completes the handshake the listening socket "
                           f"{socket_text(sock)} answered earlier in this run (request socket, "
                           "SYN_RECV): a new connection waits in the accept queue",
                           kind=StageKind.SOCKET, functions=(*funcs, "tcp_check_req"),
                           detail=detail, notes=notes)
            yield s
            self.end(Disposition.DELIVERED, "delivered", "the handshake completes: a new "
                     f"connection of {socket_text(sock)}", s.name, socket=ref)
            return
        s = self.stage("socket lookup", StageResult.DELIVERED,
                       f"the connection {describe(p)} that {socket_text(sock)} accepted earlier "
                       "in this run receives it", kind=StageKind.SOCKET, functions=funcs,
                       detail=detail, notes=notes)
        yield s
        self.end(Disposition.DELIVERED, "delivered", f"delivered to the connection accepted by "
                 f"{socket_text(sock)}", s.name, socket=ref)

    # -- forwarding --------------------------------------------------------------------------
    def _forward(self, dec: Any) -> Iterator[Stage]:
        p = self.pkt
        iif = p.iif or ""
        oif = str(dec.oif) if dec.oif else None
        config: list[ConfigRef] = []
        fwd_on, fwd_refs = _forwarding(self.snap, self.fam, iif)
        if str(dec.kind) == "forwarding-disabled":
            fwd_on = False
        config.extend(fwd_refs)
        if not fwd_on:
            key = (f"net.ipv4.conf.{iif}.forwarding" if self.v4 else "net.ipv6.conf.all.forwarding")
            s = self.stage("forward checks", StageResult.DROPPED,
                           f"not for this host and forwarding is disabled ({key} = 0): "
                           "dropped silently", kind=StageKind.FORWARD, config=tuple(config))
            yield s
            hint = ("sysctl -w net.ipv4.ip_forward=1" if self.v4
                    else "sysctl -w net.ipv6.conf.all.forwarding=1")
            self.end(Disposition.DROPPED, "forwarding-disabled",
                     f"{p.dst} is not an address of this host and forwarding is off", s.name,
                     hint=hint)
            return
        if p.ttl <= 1:
            quoted = self.orig_quoted()
            self.reply(icmp_error(p, "ttl-exceeded", src=self.route_back_source(p.src),
                                  quoted=quoted))
            s = self.stage("forward checks", StageResult.DROPPED,
                           f"{'TTL' if self.v4 else 'hop limit'} {p.ttl} cannot be decremented "
                           "for another hop: ICMP time exceeded (before the FORWARD hook)",
                           kind=StageKind.FORWARD, config=tuple(config),
                           notes=("the error quotes the packet as it arrived (translated back "
                                  "before DNAT); it is sent with TOS 0xc0",))
            yield s
            self.end(Disposition.DROPPED, "ttl-exceeded", f"TTL {p.ttl} expires here", s.name,
                     hint="the sender's TTL is too low, or a routing loop")
            return
        notes: list[str] = []
        if not self.v4 and rt.beyond_scope(p, dec):
            self.reply(icmp_error(p, "beyond-scope", src=self.route_back_source(p.src),
                                  quoted=self.orig_quoted(),
                                  reason="ICMPv6 destination unreachable, beyond scope of "
                                         "source address"))
            s = self.stage("forward checks", StageResult.DROPPED,
                           f"the link-local source {p.src} cannot leave its link ({iif}) "
                           f"through {oif}: ICMPv6 beyond scope (ip6_forward)",
                           kind=StageKind.FORWARD, config=tuple(config))
            yield s
            self.end(Disposition.DROPPED, "beyond-scope", f"a link-local source is not "
                     f"forwarded from {iif} to {oif}", s.name,
                     hint="link-local addresses are valid on one link only")
            return
        redirect, why = rt.forward_redirect(self.snap, p, dec)
        if redirect and not self.v4:  # ip6_forward: before the MTU check
            lladdr = next((a.address for a in self.snap.addresses if a.ifname == iif
                           and a.address.version == 6 and a.address.is_link_local), None)
            self.reply(icmp_error(p, "redirect-host", src=lladdr, quoted=self.orig_quoted(),
                                  reason="ICMPv6 redirect (from the link-local address)"))
        if why:
            notes.append(why)
        mtu = dec.mtu
        out_iface = self.snap.interface(oif) if oif else None
        if mtu is None and out_iface is not None:
            mtu = out_iface.mtu
        if mtu is not None and p.ip_length > mtu:
            if not self.v4 or p.df:
                self.reply(icmp_error(p, "frag-needed", src=self.route_back_source(p.src),
                                      quoted=self.orig_quoted(),
                                      reason=("ICMP fragmentation needed" if self.v4 else
                                              "ICMPv6 packet too big") + f", MTU {mtu}"))
                s = self.stage("forward checks", StageResult.DROPPED,
                               f"{p.ip_length} bytes do not fit the MTU {mtu} of {oif} and the "
                               "packet may not be fragmented"
                               + (" (DF set)" if self.v4 else " (IPv6 routers never fragment)"),
                               kind=StageKind.FORWARD, config=tuple(config))
                yield s
                self.end(Disposition.DROPPED, "frag-needed", f"too big for MTU {mtu} on {oif}",
                         s.name, hint="path MTU discovery should lower the sender's size; check "
                                      "ICMP is not filtered")
                return
            notes.append(f"{p.ip_length} bytes exceed the MTU {mtu}: fragmented on output")
        if redirect and self.v4:  # ip_forward: after the MTU check, before FORWARD
            nat_why = self._redirect_nat_drop()
            if nat_why:
                notes.append(nat_why)
            else:
                self.reply(icmp_error(p, "redirect-host", src=self.route_back_source(p.src),
                                      quoted=self.orig_quoted(), reason="ICMP redirect (host)"))
        notes.append("counted in Ip.ForwDatagrams even if FORWARD drops it")
        new = replace(p, ttl=p.ttl - 1)
        changes = changes_between(p, new)
        self.pkt = new
        s = self.stage("forward checks", StageResult.CHANGED,
                       f"forwarding enabled; {'TTL' if self.v4 else 'hop limit'} {p.ttl} -> "
                       f"{new.ttl}" + (f"; fits MTU {mtu}" if mtu and p.ip_length <= mtu else ""),
                       kind=StageKind.FORWARD, config=tuple(config), changes=changes, notes=notes)
        yield s
        if not (yield from self._hook(Hook.FORWARD, in_iface=iif, out_iface=oif)):
            return
        if not (yield from self._hook(Hook.POSTROUTING, in_iface=iif, out_iface=oif)):
            return
        if not (yield from self._confirm()):
            return
        if not (yield from self._neighbour(dec, oif)):
            return
        yield from self._egress(oif, Disposition.FORWARDED, "forwarded")

    def _neighbour(self, dec: Any, oif: str | None) -> StageGen:
        p = self.pkt
        gw = dec.gateway
        nexthop: IPAddress = gw if gw is not None else p.dst
        dev = oif or "?"
        iface = self.snap.interface(dev) if oif else None
        if iface is not None and ("NOARP" in iface.flags or iface.is_loopback):
            yield self.stage("neighbour", StageResult.PASSED,
                             f"{dev} needs no link-layer resolution (NOARP)",
                             kind=StageKind.NEIGHBOUR,
                             detail=NeighbourDetail(nexthop=str(nexthop), dev=dev))
            return True
        entry = next((n for n in self.snap.neighbours if n.address == nexthop
                      and n.ifname == dev), None)
        proto_name = "ARP" if self.v4 else "neighbour discovery"
        if entry is None:
            detail = NeighbourDetail(nexthop=str(nexthop), dev=dev)
            yield self.stage("neighbour", StageResult.UNCERTAIN,
                             f"no entry for {nexthop} on {dev}: the kernel queues the packet and "
                             f"sends a {proto_name} request; whether {nexthop} answers is not "
                             "known", kind=StageKind.NEIGHBOUR, detail=detail, uncertain=True)
            return True
        states = {s.upper() for s in entry.state}
        text = f"{entry.address} dev {entry.ifname}" + (f" lladdr {entry.lladdr}"
                                                         if entry.lladdr else "")
        text += " " + " ".join(entry.state)
        detail = NeighbourDetail(nexthop=str(nexthop), dev=dev, entry=text.strip(),
                                 state=" ".join(entry.state) or None, lladdr=entry.lladdr)
        cfg = (ConfigRef("neighbour", text.strip(), "ip neigh"),)
        if "FAILED" in states:
            s = self.stage("neighbour", StageResult.DROPPED,
                           f"{nexthop} on {dev} is FAILED: {proto_name} got no answer; the packet "
                           "is dropped", kind=StageKind.NEIGHBOUR, detail=detail, config=cfg)
            yield s
            if not p.local:
                self.reply(icmp_error(p, "host-unreachable", src=self.route_back_source(p.src),
                                      quoted=self.orig_quoted()))
            self.end(Disposition.DROPPED, "neighbour-failed",
                     f"the next hop {nexthop} does not answer {proto_name} on {dev}", s.name,
                     hint=f"check that {nexthop} is up and on the same link as {dev}")
            return False
        if states & _NEIGH_OK:
            yield self.stage("neighbour", StageResult.PASSED,
                             f"{nexthop} is {' '.join(entry.state)} at {entry.lladdr or '?'}",
                             kind=StageKind.NEIGHBOUR, detail=detail, config=cfg,
                             notes=(("STALE: used at once and re-confirmed in the background",)
                                    if "STALE" in states else ()))
            return True
        yield self.stage("neighbour", StageResult.UNCERTAIN,
                         f"{nexthop} is {' '.join(entry.state) or 'in an unknown state'}: "
                         "resolution in progress", kind=StageKind.NEIGHBOUR, detail=detail,
                         config=cfg, uncertain=True)
        return True

    def _egress(self, oif: str | None, disposition: Disposition, code: str) -> Iterator[Stage]:
        iface = self.snap.interface(oif) if oif else None
        notes: list[str] = []
        if iface is not None and not iface.is_up:
            s = self.stage("egress", StageResult.DROPPED, f"{oif} is down", kind=StageKind.EGRESS,
                           config=(_iface_ref(iface),))
            yield s
            self.end(Disposition.DROPPED, "link-down", f"the outgoing interface {oif} is down",
                     s.name, hint=f"ip link set {oif} up")
            return
        if iface is not None and "LOWER_UP" not in iface.flags and iface.flags:
            notes.append(f"{oif} has no carrier (LOWER_UP missing): the frame may be lost")
        tc = tc_info(self.snap, oif, "egress") if oif else None
        uncertain = False
        qdisc = "default qdisc"
        if tc is not None:
            qdisc = tc.summary
            notes.extend(tc.notes)
            uncertain = tc.uncertain
        s = self.stage("egress", StageResult.UNCERTAIN if uncertain else StageResult.DELIVERED,
                       f"queued on {oif} ({qdisc}) and transmitted", kind=StageKind.EGRESS,
                       config=(_iface_ref(iface),) if iface is not None else (), notes=notes,
                       uncertain=uncertain)
        yield s
        what = "forwarded out of" if disposition is Disposition.FORWARDED else "sent out of"
        self.end(disposition, code, f"{what} {oif}" + (f" to {self.pkt.dst}"), s.name,
                 egress=oif, uncertain=uncertain)

    # -- locally generated --------------------------------------------------------------------
    def _local_path(self) -> Iterator[Stage]:
        p = self.pkt
        who = f"uid {p.uid}" if p.uid is not None else "a local process"
        sock_notes: list[str] = []
        sock_detail: SocketDetail | None = None
        owner = _local_socket(self.snap, p)
        if owner is not None:
            sock_detail = SocketDetail(winner=socket_text(owner),
                                       process=owner.processes[0].name if owner.processes else None,
                                       pid=owner.processes[0].pid if owner.processes else None)
            who = socket_text(owner)
        if p.src is not None and not rt.is_local(self.snap, p.src):
            sock_notes.append(f"{p.src} is not an address of this host: sending from it needs "
                              "IP_FREEBIND / IP_TRANSPARENT or a raw socket")
        yield self.stage("sending socket", StageResult.PASSED,
                         f"{who} sends {describe(p)}", kind=StageKind.SOCKET,
                         detail=sock_detail, notes=sock_notes)
        dec = rt.route_output(self.snap, p)
        kind = str(dec.kind)
        ok = kind in ("local", "unicast", "broadcast", "multicast")
        changes: tuple[Change, ...] = ()
        source = dec.source
        if ok and source is None and kind == "local":
            source = p.dst  # a local route: the kernel uses the destination as the source
        if ok and p.src is None and source is not None:
            self.pkt = replace(p, src=source)
            changes = changes_between(p, self.pkt)
            self.orig = self.pkt
        elif ok and p.src is None:
            self.uncertain = True
        result = StageResult.DROPPED if not ok else (
            StageResult.CHANGED if changes else StageResult.PASSED)
        if ok and dec.uncertain:
            result = StageResult.UNCERTAIN
        yield self.stage("output routing", result, _route_decision_text(dec),
                         kind=StageKind.ROUTING, config=tuple(dec.config), notes=tuple(dec.notes),
                         uncertain=bool(dec.uncertain), detail=dec.detail, changes=changes)
        if not ok:
            self._route_failure(dec, "output routing", forwarded=False)
            return
        oif = str(dec.oif) if dec.oif else None
        if (yield from self._local_too_big(dec, oif)):
            return
        if self.fragment and self.ct_in_use:  # a raw socket's lone fragment
            yield from self._held("defragmentation", Hook.OUTPUT)
            return
        yield from self._conntrack(Hook.OUTPUT)
        before = self.pkt
        if not (yield from self._hook(Hook.OUTPUT, in_iface=None, out_iface=oif, local=True)):
            return
        after = self.pkt
        if (before.mark, before.dst, before.tos) != (after.mark, after.dst, after.tos):
            dec2 = rt.route_output(self.snap, after)
            kind2 = str(dec2.kind)
            ok2 = kind2 in ("local", "unicast", "broadcast", "multicast")
            notes = ["the source address chosen by the first lookup is kept"]
            what = []
            if before.mark != after.mark:
                what.append(f"mark {before.mark:#x} -> {after.mark:#x}")
            if before.dst != after.dst:
                what.append(f"destination {before.dst} -> {after.dst}")
            if before.tos != after.tos:
                what.append(f"TOS {before.tos:#x} -> {after.tos:#x}")
            oif2 = str(dec2.oif) if dec2.oif else None
            decision = f"{', '.join(what)}: " + _route_decision_text(dec2)
            if ok2 and oif2 != oif:
                decision += f" (was {oif})"
            yield self.stage("reroute", StageResult.DROPPED if not ok2 else StageResult.PASSED,
                             decision, kind=StageKind.REROUTE, config=tuple(dec2.config),
                             notes=(*notes, *dec2.notes), detail=dec2.detail,
                             uncertain=bool(dec2.uncertain))
            if not ok2:
                self._route_failure(dec2, "reroute", forwarded=False)
                return
            dec, kind, oif = dec2, kind2, oif2
        post_out = "lo" if kind == "local" else oif
        if not (yield from self._hook(Hook.POSTROUTING, in_iface=None, out_iface=post_out,
                                      local=True)):
            return
        if not (yield from self._confirm()):
            return
        if kind == "local":
            yield from self._loopback()
            return
        if not (yield from self._neighbour(dec, oif)):
            return
        yield from self._egress(oif, Disposition.SENT, "sent")

    def _local_too_big(self, dec: Any, oif: str | None) -> Generator[Stage, None, bool]:
        """ip_append_data: a UDP / ICMP datagram with DF (IP_PMTUDISC_DO) bigger than the
        route's MTU is refused by sendmsg() with EMSGSIZE; nothing is sent."""
        p = self.pkt
        if not (self.v4 and p.df and p.proto in (1, 17) and not self.fragment):
            return False
        mtu = dec.mtu
        iface = self.snap.interface(oif) if oif else None
        if mtu is None and iface is not None:
            mtu = iface.mtu
        if mtu is None or p.ip_length <= mtu:
            return False
        s = self.stage("sending socket", StageResult.DROPPED,
                       f"{p.ip_length} bytes with DF set do not fit the MTU {mtu} of the route "
                       f"via {oif}: sendmsg() fails with EMSGSIZE before any hook",
                       name="datagram size", kind=StageKind.SOCKET,
                       functions=("ip_append_data",))
        yield s
        self.end(Disposition.DROPPED, "frag-needed", f"the datagram is larger than the MTU "
                 f"{mtu} and may not be fragmented (EMSGSIZE)", s.name,
                 hint="send smaller datagrams, or allow fragmentation (IP_PMTUDISC_DONT)")
        return True

    def _loopback(self) -> Iterator[Stage]:
        old = self.pkt
        self.pkt = replace(self.pkt, iif="lo")
        yield self.stage("loopback", StageResult.CHANGED,
                         f"{old.dst} is this host's address: through lo and back into the "
                         "receive path (PREROUTING, INPUT); no input route lookup",
                         kind=StageKind.LOOPBACK, changes=changes_between(old, self.pkt),
                         notes=("conntrack keeps the entry created at OUTPUT; nat PREROUTING "
                                "rules are not consulted again for it",))
        if not (yield from self._hook(Hook.PREROUTING, in_iface="lo", out_iface=None)):
            return
        if self.fragment and self.v4:
            yield from self._held("reassembly")
            return
        if not (yield from self._hook(Hook.INPUT, in_iface="lo", out_iface=None)):
            return
        if self.fragment:
            yield from self._held("reassembly")
            return
        yield from self._local_deliver(dev="lo")


# -- module functions -----------------------------------------------------------------------

def _split(flows: tuple[Flow, ...]) -> tuple[tuple[ConntrackEntry, ...], tuple[RunState, ...]]:
    ct = tuple(f for f in flows if isinstance(f, ConntrackEntry))
    run = tuple(f for f in flows if isinstance(f, RunState))
    return ct, run


def walk(snap: HostSnapshot, packet: Packet, flows: tuple[Flow, ...] = ()) -> Iterator[Stage]:
    """The stages of ``packet``'s journey through ``snap``, lazily."""
    ct, run = _split(tuple(flows))
    return Walk(snap, packet, ct, run=run).stages()


def simulate(snap: HostSnapshot, packet: Packet, flows: tuple[Flow, ...] = (),
             spec: str = "") -> Journey:
    """The whole journey of ``packet``; ``Journey.flows`` is the updated flow table: conntrack
    entries and the run's other state (``RunState``: limit buckets, TCP handshakes), to pass to
    the next packet of the run."""
    ct, run = _split(tuple(flows))
    w = Walk(snap, packet, ct, spec, run)
    for _ in w.stages():
        pass
    return w.journey()


def simulate_sequence(snap: HostSnapshot, packets: list[tuple[Packet, str]],
                      flows: tuple[Flow, ...] = ()) -> list[Journey]:
    """Several packets in order, sharing conntrack state."""
    out: list[Journey] = []
    for pkt, spec in packets:
        j = simulate(snap, pkt, flows, spec)
        flows = j.flows
        out.append(j)
    return out


@per_snapshot()
def conntrack_in_use(snap: HostSnapshot, family: Family | None = None) -> bool:
    """Whether conntrack hooks are registered: a rule uses state / NAT, or entries exist.

    With ``family``: for that family only -- the kernel registers conntrack (and its
    defragmentation) per family (``nf_ct_netns_get``): an iptables rule for IPv4 only, an
    ``inet`` nft table for both."""
    if any(family is None or e.family is family for e in snap.conntrack):
        return True
    for dump in snap.iptables:
        if family is not None and dump.family is not family:
            continue
        for table in dump.tables:
            if table.name == "nat" and table.chains:
                return True
            for chain in table.chains:
                for rule in chain.rules:
                    if any(m.module in _CT_MODULES for m in rule.matches):
                        return True
                    if rule.target is not None and rule.target.name in _CT_TARGETS:
                        return True
    nft = snap.raw_dump("nft -j list ruleset")
    if nft is None:
        return False
    words = ('"ct"', '"nat"', '"snat"', '"dnat"', '"masquerade"')
    if family is None:
        return any(w in nft.text for w in words)
    fams = {"inet", "ip" if family is Family.IPV4 else "ip6"}
    try:
        items = json.loads(nft.text).get("nftables", [])
    except (ValueError, AttributeError):
        return any(w in nft.text for w in words)
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict):
            continue
        for kind in ("rule", "chain"):
            body = item.get(kind)
            if isinstance(body, dict) and body.get("family") in fams:
                text = json.dumps(body)
                if any(w in text for w in words):
                    return True
    return False


@dataclass(frozen=True, slots=True)
class _Tc:
    summary: str
    notes: tuple[str, ...]
    uncertain: bool
    config: tuple[ConfigRef, ...]
    direction: str
    dev: str

    def stage(self, w: Walk) -> Stage:
        result = StageResult.UNCERTAIN if self.uncertain else StageResult.SKIPPED
        decision = (f"{self.summary}: filters present, their effect is not modelled; assumed "
                    "to pass" if self.uncertain else f"{self.summary}: no filters")
        return w.stage("tc ingress", result, decision, kind=StageKind.TC, config=self.config,
                       notes=self.notes, uncertain=self.uncertain)


def tc_info(snap: HostSnapshot, dev: str | None, direction: str) -> _Tc | None:
    """What the raw ``tc -j`` dumps say about ``dev`` (None: tc was not collected)."""
    if dev is None:
        return None
    qdisc_dumps = [r for r in snap.raw if r.name.startswith("tc") and "qdisc" in r.name]
    if not qdisc_dumps:
        return None
    qdiscs: list[dict[str, Any]] = []
    for r in qdisc_dumps:
        try:
            data = json.loads(r.text or "[]")
        except ValueError:
            continue
        if isinstance(data, list):
            qdiscs += [q for q in data if isinstance(q, dict) and q.get("dev") == dev]
    filters = 0
    for r in snap.raw:
        where = r.name + r.source
        if r.name.startswith("tc") and "filter" in r.name and dev in where \
                and (direction in where or "ingress" not in where):
            try:
                data = json.loads(r.text or "[]")
            except ValueError:
                continue
            if isinstance(data, list):
                filters += len(data)
    hooks = [q for q in qdiscs if q.get("kind") in ("ingress", "clsact")]
    root = [q for q in qdiscs if q.get("root") or q.get("parent") in (None, "root")]
    if direction == "ingress":
        if not hooks:
            return _Tc(f"no ingress qdisc on {dev}", (), False, (), direction, dev)
        kind = hooks[0].get("kind", "ingress")
        cfg = (ConfigRef("tc", f"qdisc {kind} dev {dev}", "tc qdisc show"),)
        notes = ("tc filters are shown, not evaluated",) if filters else (
            "no filter dump for this device: filters may exist",)
        return _Tc(f"qdisc {kind} on {dev}", notes, True, cfg, direction, dev)
    kinds = ", ".join(str(q.get("kind")) for q in root) or "default"
    notes2: list[str] = []
    unc = False
    if any(q.get("kind") == "clsact" for q in qdiscs) or filters:
        notes2.append("egress tc filters present: their effect is not modelled")
        unc = True
    if any(q.get("kind") in ("netem", "tbf", "htb", "hfsc", "cake") for q in qdiscs):
        notes2.append("a shaping qdisc delays or may drop packets under load")
    return _Tc(f"qdisc {kinds}", tuple(notes2), unc,
               (ConfigRef("tc", f"qdisc {kinds} dev {dev}", "tc qdisc show"),), direction, dev)


def _iface_ref(iface: Interface) -> ConfigRef:
    text = f"{iface.index}: {iface.name}: <{','.join(iface.flags)}> mtu {iface.mtu}"
    if iface.master:
        text += f" master {iface.master}"
    text += f" state {iface.operstate}"
    if iface.kind:
        text += f" ({iface.kind}" + (f" id {iface.vlan_id}" if iface.vlan_id is not None else "") + ")"
    return ConfigRef("interface", text, "ip link")


def _tuple_text(proto: int, t: Any) -> str:
    names = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6", 132: "sctp"}
    name = names.get(proto, str(proto))
    def ep(a: Any, port: int | None) -> str:
        if port is None:
            return str(a)
        return f"[{a}]:{port}" if getattr(a, "version", 4) == 6 else f"{a}:{port}"
    out = f"{name} {ep(t.src, t.sport)} -> {ep(t.dst, t.dport)}"
    if t.icmp_type is not None:
        out += f" type {t.icmp_type} code {t.icmp_code or 0}" + (f" id {t.icmp_id}"
                                                                 if t.icmp_id is not None else "")
    return out


def _rule_name(x: Any) -> str:
    if x is None:
        return ""
    if isinstance(x, str):
        return x
    table, chain, index = getattr(x, "table", None), getattr(x, "chain", None), getattr(x, "index", None)
    if table and chain:
        return f"{table}/{chain}" + (f" #{index}" if index else " policy")
    return str(x)


def _route_decision_text(dec: Any) -> str:
    """One sentence: what routing decided (the router's own reason), which non-default policy
    rule chose the table, and the source address it selected."""
    text = getattr(dec, "reason", "") or str(dec.kind).replace("-", " ")
    extras: list[str] = []
    rule = getattr(dec, "rule", None)
    if rule is not None and rule.priority not in (0, 32766, 32767):
        extras.append(f"table chosen by policy rule {rule.text()}")
    source = getattr(dec, "source", None)
    if source is not None and str(source) not in text:
        extras.append(f"source address {source}")
    return text + ("; " + "; ".join(extras) if extras else "")


def _bridge_family_chains(snap: HostSnapshot) -> list[str]:
    """Base chains of native bridge-family tables (they filter bridged frames before IP)."""
    from journey.engine.netfilter.nft_eval import native_ruleset

    nr = native_ruleset(snap)
    if nr is None:
        return []
    return [f"bridge {t.name} {c.name}" for t in nr.ruleset.tables if t.family == "bridge"
            for c in t.base_chains]


def _oif_text(dec: Any) -> str:
    if dec.oif is None:
        return ""
    return f" via {dec.gateway} dev {dec.oif}" if dec.gateway is not None else f" out of {dec.oif}"


def _net_hint(addr: IPAddress) -> str:
    net = ipaddress.ip_network(f"{addr}/{24 if addr.version == 4 else 64}", strict=False)
    return str(net)


def _is_broadcast(snap: HostSnapshot, addr: IPAddress) -> bool:
    if addr.version == 4 and str(addr) == "255.255.255.255":
        return True
    return any(a.broadcast == addr for a in snap.addresses)


def _forwarding(snap: HostSnapshot, family: Family, iif: str) -> tuple[bool, list[ConfigRef]]:
    """Forwarding for a packet arriving on ``iif`` (v4: conf.IIF.forwarding; v6: conf.all)."""
    value = sc.iface_forwarding(snap, family, iif)
    return bool(value), list(value.config)


def _conn_key(p: Packet) -> str:
    """A TCP connection's 4-tuple as the local stack sees it (after NAT), for ``RunState``."""
    return f"{p.src} {p.sport} {p.dst} {p.dport}"


def _local_socket(snap: HostSnapshot, p: Packet) -> Any:
    """A snapshot socket that could be the sender (a connection with this 4-tuple)."""
    proto = {6: "tcp", 17: "udp"}.get(p.proto)
    if proto is None:
        return None
    for s in snap.sockets:
        if s.proto != proto or s.remote is None:
            continue
        if s.remote_port == p.dport and s.remote == p.dst and s.local_port == p.sport \
                and (p.src is None or s.local == p.src):
            return s
    return None
