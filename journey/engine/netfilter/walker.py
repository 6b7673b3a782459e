"""The rule walker: one packet through every base chain of one netfilter hook.

``run_hook`` walks the hook's base chains in priority order (``Pipeline.chains``) with the
kernel's chain semantics: rules in order, user chains by jump (return to the caller) and goto
(return to the caller's caller), RETURN, the end of a user chain as an implicit RETURN, the
base chain's policy at its end. An ACCEPT ends only that base chain; DROP, REJECT and QUEUE end
the hook. Each base chain becomes one ``Stage`` listing every rule evaluated — matched, or the
first condition that failed — with counters from the snapshot, changes (old -> new) and notes.

Conntrack around the chains (``nf_conntrack_in`` sits at priority -200, after raw):
- a NOTRACK / ``CT --notrack`` in raw makes the packet UNTRACKED for the later chains; a
  ``CT --zone`` re-runs the lookup in that zone when ``HookContext.flows`` is given;
- nat chains run only for a flow's first packet (``CtView.nat_pending``), and stop at the
  first nat chain that binds; later packets of the flow are translated by conntrack at the nat
  chain's place (``ct_apply_nat``) and the nat stage says it was skipped.

Rules are compiled once per snapshot, lazily: a chain when first walked (a cheap scan indexes
its runs of exact-address rules), a rule when first evaluated (matches into closures, shared
between rules with the same Match object; targets into actions). So the first trace through a
60k-rule kube-proxy ruleset costs a few ms, and later ones well under one.

Pure: depends on ``journey.model`` and the engine's netfilter/conntrack modules; no I/O.
"""

from __future__ import annotations

import operator
import socket
from dataclasses import dataclass, field, replace
from typing import cast

from journey.engine.conntrack import (
    CtState,
    CtView,
    ct_after_nat,
    ct_apply_nat,
    ct_lookup,
    untracked_view,
)
from journey.engine.netfilter.matches import (
    BadOption,
    CompileCtx,
    Cond,
    Env,
    Unsure,
    compile_match,
    fast_addr,
    parse_net,
    rate_decide,
)
from journey.engine.netfilter.nft_eval import NativeResult, walk_native
from journey.engine.netfilter.pipeline import (
    BACKEND_LABEL,
    NFT_ORDER_NOTE,
    ORDER_NOTE,
    PRIORITIES,
    BaseChain,
    Hook,
    Pipeline,
)
from journey.engine.netfilter.targets import (
    NatBinding,
    RejectSpec,
    TargetFn,
    TargetResult,
    compile_target,
)
from journey.model.family import Family
from journey.model.journey import (
    Change,
    ConfigRef,
    RuleEval,
    RuleRef,
    Stage,
    StageKind,
    StageResult,
)
from journey.model.packet import Packet
from journey.model.ruleset import JumpKind, Match, Rule, Table
from journey.model.snapshot import ConntrackEntry, HostSnapshot

__all__ = [
    "HookContext",
    "HookOutcome",
    "NatBinding",
    "RejectSpec",
    "compile_eagerly",
    "run_hook",
]

MAX_DEPTH = 64  # the kernel refuses deeper jump chains (and loops) at load time
MAX_STEPS = 1_000_000


@dataclass(frozen=True, slots=True)
class HookContext:
    """Where the packet is: hook, interfaces, its conntrack view, whether it is locally generated."""

    hook: Hook
    in_iface: str | None
    out_iface: str | None
    ct: CtView | None  # None if conntrack is not in use
    local: bool = False  # locally generated (owner match only in OUTPUT/POSTROUTING)
    flows: tuple[ConntrackEntry, ...] | None = None  # for a re-lookup after CT --zone in raw
    rates: dict[str, int] | None = None  # the run's limit/hashlimit buckets (updated in place)


@dataclass(frozen=True, slots=True)
class HookOutcome:
    """What one hook did to the packet."""

    stages: tuple[Stage, ...]
    packet: Packet  # after all changes (mark, tos, ttl, NAT)
    verdict: str  # "accept" | "drop" | "reject" | "queue" | "stolen"
    decided_by: RuleEval | None = None
    reject: RejectSpec | None = None
    nat: NatBinding | None = None
    ct_mark: int | None = None  # connmark after the hook when a rule changed it
    notrack: bool = False  # raw NOTRACK / CT --notrack
    rules_hit: tuple[RuleRef, ...] = ()
    uncertain: bool = False
    ct: CtView | None = None  # the conntrack view after the hook (NOTRACK, NAT binding, connmark)
    changes: tuple[Change, ...] = ()


# -- compilation (once per snapshot) ---------------------------------------------------------------

@dataclass(slots=True)
class CRule:
    rule: Rule
    ref: RuleRef
    conds: tuple[Cond, ...]
    action: str  # "none" | "verdict" | "jump" | "goto" | "ext"
    verdict: str | None
    chain: str | None
    fn: TargetFn | None
    target_text: str | None
    counters: str | None
    backend: str
    fail_evals: list[RuleEval | None] = field(default_factory=list)
    match_eval: RuleEval | None = None

    def failed(self, i: int, uncertain: bool, note: str | None) -> RuleEval:
        if not uncertain and note is None:
            ev = self.fail_evals[i]
            if ev is None:
                ev = self._eval(False, None, self.conds[i].text, False, None)
                self.fail_evals[i] = ev
            return ev
        return self._eval(False, None, self.conds[i].text, uncertain, note)

    def matched(self, uncertain: bool, note: str | None) -> RuleEval:
        if not uncertain and note is None:
            if self.match_eval is None:
                self.match_eval = self._eval(True, self.target_text, None, False, None)
            return self.match_eval
        return self._eval(True, self.target_text, None, uncertain, note)

    def _eval(self, matched: bool, target: str | None, failed: str | None, uncertain: bool,
              note: str | None) -> RuleEval:
        r = self.rule
        return RuleEval(table=r.table, chain=r.chain, index=r.index, text=r.text, matched=matched,
                        target=target, failed_condition=failed, uncertain=uncertain, note=note,
                        counters=self.counters, backend=self.backend, line=r.line)


MIN_RUN = 8  # consecutive exact-address rules worth an index (eager reference only)
SCAN_MIN = 64  # rules scanned at a time at least (then twice as many as scanned so far)

_FULL = {Family.IPV4: (1 << 32) - 1, Family.IPV6: (1 << 128) - 1}
_BITS = {Family.IPV4: "32", Family.IPV6: "128"}
_AF = {Family.IPV4: socket.AF_INET, Family.IPV6: socket.AF_INET6}
_NAME = operator.attrgetter("name")


def _counters(r: Rule) -> str | None:
    return f"[{r.counters.packets}:{r.counters.bytes}]" if r.counters is not None else None


def _addr_key(m: Match, family: Family) -> tuple[str, int] | None:
    """The ``Cond.key`` that ``compile_match`` gives built-in match ``m`` (an exact, not negated
    ``-s``/``-d`` host), found without compiling it."""
    o = m.options[0]
    if o.name not in ("source", "destination") or o.negated or not o.values:
        return None
    which = "src" if o.name == "source" else "dst"
    v = o.values[0]
    a, slash, plen = v.partition("/")
    if not slash or plen == _BITS[family]:  # iptables-save: "-d 10.96.0.1/32"
        n = fast_addr(a, family)
        if n is not None:
            return which, n
    if "," in v:
        return None
    try:
        net, mask = parse_net(v, family)
    except BadOption:
        return None
    return (which, net) if mask == _FULL[family] else None


class _Run:
    """Consecutive rules whose first condition is an exact host of one kind ("src"/"dst"):
    address -> its first rule (``idx``), rule -> the next rule with its address (``dup``), and
    the memoised "failed at that address" evaluations. Grows while the chain is scanned."""

    __slots__ = ("a", "b", "done", "dup", "idx", "kind", "memo")

    def __init__(self, a: int, kind: str) -> None:
        self.a = a
        self.b = a  # end (exclusive) so far
        self.kind = kind
        self.idx: dict[int, int] = {}
        self.dup: dict[int, int] = {}
        self.memo: list[RuleEval | None] = []
        self.done = bytearray()


class CChain:
    """A chain, compiled rule by rule when the walker first evaluates a rule, with indexes over
    runs of rules whose first condition is an exact source/destination address (kube-proxy's
    KUBE-SERVICES), so a walk can jump to the next rule that can match and add the memoised
    "failed at that address" evaluations in bulk. The runs come from a cheap scan of the rules'
    first built-in parameter, done as far as walks have needed (a packet for the first service
    scans a few rules, not 6k); rules skipped over are never compiled."""

    __slots__ = ("addrs", "eager", "kinds", "n", "rules", "run_at", "runs", "scanned", "src",
                 "table")

    def __init__(self, table: CTable, src: tuple[Rule, ...], eager: bool = False) -> None:
        self.table = table
        self.src = src
        self.eager = eager
        n = self.n = len(src)
        self.rules: list[CRule | None] = [None] * n
        # kinds[p]: "src"/"dst" when rule p's first condition is an exact host, addrs[p] its int
        self.kinds: list[str | None] = [None] * n
        self.addrs = [0] * n
        self.run_at = [-1] * n
        self.runs: list[_Run] = []
        self.scanned = 0
        if eager:
            self.scan(n)

    def compile(self, i: int) -> CRule:
        """Rule ``i``, compiled on first use."""
        cr = self.rules[i]
        if cr is None:
            cr = self.rules[i] = self.table.compile(self.src[i])
        return cr

    def scan(self, upto: int) -> None:
        """Find the keys of rules ``scanned..upto-1`` (what ``compile_match`` gives as their
        first condition's ``key``, without compiling) and extend the runs."""
        upto = min(upto, self.n)
        lo = self.scanned
        if upto <= lo:
            return
        if self.eager:
            self._keys_compiled(lo, upto)
        else:
            self._keys(lo, upto)
        self.scanned = upto
        kinds, addrs, run_at, runs = self.kinds, self.addrs, self.run_at, self.runs
        run = runs[-1] if runs and runs[-1].b == lo else None
        for p in range(lo, upto):
            kind = kinds[p]
            if kind is None:
                run = None
                continue
            if run is None or run.kind != kind:
                run = _Run(p, kind)
                runs.append(run)
            run.b = p + 1
            a = addrs[p]
            q = run.idx.get(a)
            if q is None:
                run.idx[a] = p
            else:  # append p to a's chain of positions
                while (nq := run.dup.get(q)) is not None:
                    q = nq
                run.dup[q] = p
            run.memo.append(None)
            run.done.append(0)
            run_at[p] = len(runs) - 1

    def _keys_compiled(self, lo: int, upto: int) -> None:
        """The eager reference: keys from the compiled conditions, runs of MIN_RUN or more."""
        for p in range(lo, upto):
            cr = self.compile(p)
            k = cr.conds[0].key if cr.conds and self.table.index else None
            if k is not None:
                self.kinds[p], self.addrs[p] = k
        p = lo
        while p < upto:  # (short runs unindexed, as the reference always did)
            q = p
            while q < upto and self.kinds[q] is not None and self.kinds[q] == self.kinds[p]:
                q += 1
            if q - p < MIN_RUN:
                self.kinds[p:q] = [None] * (q - p)
            p = max(q, p + 1)

    def _keys(self, lo: int, upto: int) -> None:
        src, kinds, addrs, table = self.src, self.kinds, self.addrs, self.table
        family = table.cc.family
        af = _AF[family]
        bits = _BITS[family]
        pton, ntop, from_bytes = socket.inet_pton, socket.inet_ntop, int.from_bytes
        for p in range(lo, upto):
            r = src[p]
            for m in r.matches:
                if m.module == "":  # the first condition checked: the first built-in
                    break
            else:
                continue  # no built-in: the first condition is a module's (never a key)
            opts = m.options
            if not opts:  # (compiles to nothing: the next match comes first)
                cr = self.compile(p)
                k = cr.conds[0].key if cr.conds else None
                if k is not None:
                    kinds[p], addrs[p] = k
                continue
            o = opts[0]
            name = o.name
            if o.negated or (name != "destination" and name != "source") or not o.values:
                continue
            v = o.values[0]
            a, slash, plen = v.partition("/")
            if not slash or plen == bits:  # iptables-save: "-d 10.96.0.1/32": canonical text
                try:
                    packed = pton(af, a)
                except (OSError, ValueError):
                    packed = b""
                if packed and ntop(af, packed) == a:
                    kinds[p] = "dst" if name == "destination" else "src"
                    addrs[p] = from_bytes(packed, "big")
                    continue
            k = _addr_key(m, family)  # any other spelling: as compile_match reads it
            if k is not None:
                kinds[p], addrs[p] = k

    def skip_to(self, run: _Run, i: int, addr: int) -> int:
        """The first rule of ``run`` from ``i`` on whose address is ``addr`` (its end if none),
        scanning further while the run may go on."""
        while True:
            q = run.idx.get(addr)
            while q is not None and q < i:
                q = run.dup.get(q)
            if q is not None:
                return q
            if run.b < self.scanned or self.scanned >= self.n:
                return run.b
            self.scan(max(2 * self.scanned, self.scanned + SCAN_MIN))

    def fails(self, run: _Run, lo: int, hi: int) -> list[RuleEval]:
        """The evaluations of rules ``lo..hi-1`` of a run, each failing at its address."""
        a, memo, done = run.a, run.memo, run.done
        if done.find(0, lo - a, hi - a) >= 0:
            for p in range(lo, hi):
                if not done[p - a]:
                    memo[p - a] = self._fail_first(p)
                    done[p - a] = 1
        return cast("list[RuleEval]", memo[lo - a:hi - a])

    def _fail_first(self, p: int) -> RuleEval:
        cr = self.rules[p]
        if cr is not None:
            return cr.failed(0, False, None)
        r = self.src[p]
        # the first condition of an indexed rule is its first built-in parameter (-s/-d)
        for m in r.matches:
            if m.module == "":
                break
        c = r.counters
        return RuleEval(r.table, r.chain, r.index, r.text, False, None, m.text(), False, None,
                        f"[{c.packets}:{c.bytes}]" if c is not None else None, None,
                        self.table.backend, r.line)


class CTable:
    """One table of one dump, compiled lazily chain by chain and rule by rule (``eager``: every
    rule of a chain at its first use, without sharing compiled matches, and with no address
    index unless ``index``: the references the lazy path is tested against)."""

    __slots__ = ("backend", "cc", "chains", "compiled", "eager", "index", "memo", "source", "table")

    def __init__(self, table: Table, cc: CompileCtx, backend: str, source: str,
                 eager: bool = False, index: bool = True) -> None:
        self.table = table
        self.cc = cc
        self.backend = backend
        self.source = source
        self.eager = eager
        self.index = index
        self.chains = dict(zip(map(_NAME, table.chains), table.chains, strict=True))
        self.compiled: dict[str, CChain] = {}
        # compiled conditions by Match object: the parser shares equal Match objects between
        # rules, and a match's conditions depend only on it and the family (fixed per table)
        self.memo: dict[int, tuple[Match, tuple[Cond, ...]]] = {}

    def rules(self, name: str) -> CChain:
        got = self.compiled.get(name)
        if got is None:
            chain = self.chains.get(name)
            got = CChain(self, chain.rules if chain is not None else (), self.eager)
            self.compiled[name] = got
        return got

    def _conds(self, m: Match, cc: CompileCtx) -> tuple[Cond, ...]:
        if self.eager:
            return tuple(compile_match(m, cc))
        hit = self.memo.get(id(m))
        if hit is not None and hit[0] is m:
            return hit[1]
        conds = tuple(compile_match(m, cc))
        self.memo[id(m)] = (m, conds)
        return conds

    def compile(self, r: Rule) -> CRule:
        cc = CompileCtx(self.cc.family, self.cc.table, r.chain, self.cc.snap)
        conds: list[Cond] = []
        # the kernel checks the built-in parameters (ip_packet_match) before any match module
        for m in r.matches:
            if m.module == "":
                conds.extend(self._conds(m, cc))
        for m in r.matches:
            if m.module != "":
                conds.extend(self._conds(m, cc))
        ref = RuleRef(table=r.table, chain=r.chain, index=r.index, backend=self.backend)
        t = r.target
        action, verdict, chain, fn, ttext = "none", None, None, None, None
        if t is not None:
            ttext = t.text()
            if t.name in ("ACCEPT", "DROP", "RETURN", "QUEUE") and not t.options:
                action, verdict = "verdict", t.name
                if t.name == "QUEUE":
                    action, fn = "ext", compile_target(t, cc, ref)
            elif t.name in self.chains:
                action, chain = ("goto" if t.kind is JumpKind.GOTO else "jump"), t.name
            else:
                action, fn = "ext", compile_target(t, cc, ref)
        return CRule(rule=r, ref=ref, conds=tuple(conds), action=action, verdict=verdict,
                     chain=chain, fn=fn, target_text=ttext, counters=_counters(r),
                     backend=self.backend, fail_evals=[None] * len(conds))


def _ctable(snap: HostSnapshot, pipeline: Pipeline, base: BaseChain,
            eager: bool = False, index: bool = True) -> CTable | None:
    cache = pipeline.compiled
    key = (base.nf_family, base.backend, base.table)
    got = cache.get(key)
    if got is None:
        table = pipeline.table(base)
        if table is None:
            return None
        dump = pipeline.dump(base.nf_family, base.backend)
        got = CTable(table, CompileCtx(base.family, base.table, "", snap), base.backend,
                     dump.source if dump is not None else "", eager, index)
        cache[key] = got
    assert isinstance(got, CTable)
    return got


def compile_eagerly(snap: HostSnapshot, pipeline: Pipeline, index: bool = True) -> None:
    """Make ``pipeline`` compile its iptables chains the reference way: every rule of a chain
    when the chain is first used, each match compiled on its own, the address indexes taken from
    the compiled conditions (``index=False``: none, every rule evaluated in turn). For tests that
    check the lazy path gives identical results; call before the pipeline's first walk."""
    for base in pipeline.all_chains():
        if base.backend != "native":
            _ctable(snap, pipeline, base, eager=True, index=index)


# -- walking one base chain -------------------------------------------------------------------------

@dataclass(slots=True)
class _ChainResult:
    verdict: str  # "accept" | "drop" | "reject" | "queue" | "stolen"
    evals: list[RuleEval]
    hit: list[RuleRef]
    decided: RuleEval | None
    decided_rule: Rule | None
    policy: bool
    res: TargetResult | None
    uncertain: bool
    notes: list[str]


def _walk(ct: CTable, base: BaseChain, env: Env) -> _ChainResult:
    evals: list[RuleEval] = []
    hit: list[RuleRef] = []
    notes: list[str] = []
    uncertain = False
    stack: list[tuple[CChain, int]] = []
    chain = ct.rules(base.chain)
    rules = chain.rules
    i = 0
    steps = 0
    while True:
        steps += 1
        if steps > MAX_STEPS:
            notes.append("rule walk aborted: too many steps (a loop?)")
            return _ChainResult("accept", evals, hit, None, None, True, None, True, notes)
        if i >= len(rules):
            if not stack:
                return _ChainResult(base.policy.lower(), evals, hit, None, None, True, None,
                                    uncertain, notes)
            chain, i = stack.pop()
            rules = chain.rules
            continue
        if i >= chain.scanned:
            chain.scan(max(2 * chain.scanned, i + SCAN_MIN))
        ri = chain.run_at[i]
        if ri >= 0:
            run = chain.runs[ri]
            addr = env.dst_i if run.kind == "dst" else env.src_i
            if addr >= 0:
                nxt = chain.skip_to(run, i, addr)
                if nxt > i:
                    evals.extend(chain.fails(run, i, nxt))
                    i = nxt
                    continue
        cr = rules[i]
        if cr is None:
            cr = chain.compile(i)
        i += 1
        ok = True
        failed_at = -1
        unc = False
        note_parts: list[str] | None = None
        for k, c in enumerate(cr.conds):
            r = c.pred(env)
            if r is True:
                continue
            if r is False:
                ok = False
                failed_at = k
                break
            assert isinstance(r, Unsure)
            if r.rate is not None:  # limit / hashlimit: the run's token bucket decides
                ref = cr.ref
                r = rate_decide(env, f"{ref.backend} {env.family} {ref.table}/{ref.chain}"
                                     f"#{ref.index}/{k}", r)
            unc = True
            if note_parts is None:
                note_parts = []
            note_parts.append(r.note)
            if not r.assume:
                ok = False
                failed_at = k
                break
        note = "; ".join(note_parts) if note_parts else None
        if unc:
            uncertain = True
        if not ok:
            evals.append(cr.failed(failed_at, unc, note))
            continue
        hit.append(cr.ref)
        if cr.action == "none":
            evals.append(cr.matched(unc, note))
            continue
        if cr.action == "jump" or cr.action == "goto":
            evals.append(cr.matched(unc, note))
            if cr.action == "jump":
                if len(stack) >= MAX_DEPTH:
                    notes.append("jump depth limit reached")
                    uncertain = True
                    continue
                stack.append((chain, i))
            chain, i = ct.rules(cr.chain or ""), 0
            rules = chain.rules
            continue
        if cr.action == "verdict":
            v = cr.verdict
            if v == "RETURN":
                evals.append(cr.matched(unc, note))
                if not stack:
                    return _ChainResult(base.policy.lower(), evals, hit, None, None, True, None,
                                        uncertain, notes)
                chain, i = stack.pop()
                rules = chain.rules
                continue
            ev = cr.matched(unc, note)
            evals.append(ev)
            return _ChainResult("accept" if v == "ACCEPT" else "drop", evals, hit, ev, cr.rule,
                                False, None, uncertain, notes)
        assert cr.fn is not None
        res = cr.fn(env)
        tnote = res.note
        full_note = "; ".join(x for x in (note, tnote) if x) or None
        if res.uncertain:
            uncertain = True
        ev = cr.matched(unc or res.uncertain, full_note)
        evals.append(ev)
        if res.verdict == "continue":
            continue
        return _ChainResult(res.verdict, evals, hit, ev, cr.rule, False, res, uncertain, notes)


# -- the hook ----------------------------------------------------------------------------------------

_FUNCTIONS = {
    Hook.PREROUTING: ("NF_HOOK(NF_INET_PRE_ROUTING)", "ipt_do_table"),
    Hook.INPUT: ("NF_HOOK(NF_INET_LOCAL_IN)", "ipt_do_table"),
    Hook.FORWARD: ("NF_HOOK(NF_INET_FORWARD)", "ipt_do_table"),
    Hook.OUTPUT: ("NF_HOOK(NF_INET_LOCAL_OUT)", "ipt_do_table"),
    Hook.POSTROUTING: ("NF_HOOK(NF_INET_POST_ROUTING)", "ipt_do_table"),
}


def _s(v: object) -> str:
    return "-" if v is None else str(v)


def _changes(old: Packet, new: Packet) -> list[Change]:
    out: list[Change] = []
    for name, a, b in old.diff(new):
        if name in ("mark", "tos") and isinstance(a, int) and isinstance(b, int):
            out.append(Change(name, hex(a), hex(b)))
        else:
            out.append(Change(name, _s(a), _s(b)))
    return out


def _nat_slot_prio(hook: Hook) -> int:
    return PRIORITIES["dstnat"] if hook in (Hook.PREROUTING, Hook.OUTPUT) else PRIORITIES["srcnat"]


def _stage_base(base: BaseChain, pkt: Packet, result: StageResult, summary: str, decision: str,
                **kw: object) -> Stage:
    return Stage(name=base.label, kind=StageKind.NETFILTER, result=result, summary=summary,
                 decision=decision, packet=pkt, functions=_FUNCTIONS[base.hook],
                 hook=str(base.hook), table=base.table, family=base.nf_family,
                 priority=base.priority, **kw)  # type: ignore[arg-type]


def _summary(base: BaseChain) -> str:
    what = {
        "raw": "the raw table runs before conntrack (NOTRACK, CT zones)",
        "mangle": "the mangle table alters packets (marks, TOS, TTL)",
        "nat": "the nat table decides address translation for a flow's first packet",
        "filter": "the filter table accepts or drops",
        "security": "the security table applies SELinux/secmark rules",
    }.get(base.table, f"table {base.table}")
    if base.backend == "native":
        what = f"nft {base.kind} chain {base.chain} of table {base.nf_family} {base.table}"
    return (f"{base.hook.chain_name} chain of {base.table} ({BACKEND_LABEL.get(base.backend, base.backend)}, "
            f"{base.nf_family}, priority {base.priority}): {what}")


def run_hook(snap: HostSnapshot, pipeline: Pipeline, pkt: Packet, ctx: HookContext) -> HookOutcome:
    """Walk every base chain of ``ctx.hook`` for ``pkt``'s family, in priority order."""
    hook = ctx.hook
    family: Family = pkt.family
    bases = pipeline.chains(hook, family)
    env = Env(snap, pkt, hook, ctx.in_iface, ctx.out_iface, ctx.ct, ctx.local)
    env.rates = ctx.rates
    start_mark = env.ct_mark
    stages: list[Stage] = []
    hits: list[RuleRef] = []
    uncertain = False
    nat: NatBinding | None = None
    nat_bound_here = False
    ct_nat_done = False
    has_nat_chains = any(b.kind == "nat" for b in pipeline.all_chains() if b.family is family)
    mixed = pipeline.mixed_backends(hook, family)
    slot = _nat_slot_prio(hook)
    conntrack_done = False

    def conntrack_step() -> None:
        """What nf_conntrack_in changes for the later chains (after raw)."""
        nonlocal conntrack_done
        conntrack_done = True
        if hook not in (Hook.PREROUTING, Hook.OUTPUT):
            return
        if env.notrack:
            env.ct = untracked_view("NOTRACK in the raw table: the packet is not tracked")
            return
        if env.ct is not None and env.ct_zone != env.ct.zone and ctx.flows is not None:
            env.ct = ct_lookup(snap, ctx.flows, env.pkt, zone=env.ct_zone)

    def ct_nat_stage(base: BaseChain | None) -> Stage | None:
        """Conntrack's NAT for a later packet of a flow, at the nat chain's place."""
        nonlocal ct_nat_done
        ct_nat_done = True
        ct = env.ct
        if ct is None or ct.nat_pending or not has_nat_chains:
            return None
        new, changes = ct_apply_nat(ct, env.pkt, hook)
        if base is None and not changes:
            return None
        old = env.pkt
        env.set_packet(new)
        decision = ("skipped: NAT decided on the first packet of the flow"
                    if ct.state is not CtState.UNTRACKED and ct.state is not CtState.INVALID
                    else f"skipped: the packet is {ct.state} (no NAT)")
        if changes:
            decision += "; conntrack translates this packet: " + ", ".join(
                f"{c.field} {c.old} -> {c.new}" for c in changes)
        if base is None:
            return Stage(name=f"{hook.chain_name} · conntrack NAT", kind=StageKind.NETFILTER,
                         result=StageResult.CHANGED, summary="conntrack applies the flow's NAT",
                         decision=decision, packet=new, functions=("nf_nat_inet_fn", "nf_nat_packet"),
                         hook=str(hook), table="nat", family="ip6" if family is Family.IPV6 else "ip",
                         priority=slot, changes=tuple(changes))
        return _stage_base(base, new, StageResult.CHANGED if changes else StageResult.SKIPPED,
                           _summary(base), decision, changes=tuple(_changes(old, new)))

    for base in bases:
        if not conntrack_done and base.priority > PRIORITIES["conntrack"]:
            conntrack_step()
        if not ct_nat_done and base.priority > slot and (env.ct is None or not env.ct.nat_pending):
            st = ct_nat_stage(None)
            if st is not None:
                stages.append(st)
        notes: list[str] = []
        if mixed:
            notes.append(ORDER_NOTE)
        if pipeline.nft_tie(base):
            notes.append(NFT_ORDER_NOTE)
        ct = env.ct
        if base.kind == "nat":
            skip: str | None = None
            if ct is not None and ct.state in (CtState.UNTRACKED, CtState.INVALID):
                skip = f"skipped: the packet is {ct.state}, so it is not NATed"
            elif ct is not None and not ct.nat_pending:
                if not ct_nat_done:
                    st = ct_nat_stage(base)
                    if st is not None:
                        stages.append(replace(st, notes=tuple(notes)))
                        continue
                skip = "skipped: NAT decided on the first packet of the flow"
            elif nat_bound_here:
                skip = "skipped: an earlier nat chain on this hook already bound the NAT"
            if skip is not None:
                stages.append(_stage_base(base, env.pkt, StageResult.SKIPPED, _summary(base), skip,
                                          notes=tuple(notes)))
                continue
            if ct is None:
                notes.append("no conntrack view given: treated as the flow's first packet")
        before = env.pkt
        mark_before = env.ct_mark
        native: NativeResult | None = None
        table: CTable | None = None
        if base.backend == "native":  # nft ruleset chain (journey.engine.netfilter.nft_eval)
            native = walk_native(snap, base, env)
            res = _ChainResult(native.verdict, native.evals, native.hit, native.decided, None,
                               native.policy, native.res, native.uncertain, native.notes)
        else:
            table = _ctable(snap, pipeline, base)
            if table is None:
                continue
            res = _walk(table, base, env)
        hits.extend(res.hit)
        uncertain = uncertain or res.uncertain
        notes.extend(res.notes)
        changes = _changes(before, env.pkt)
        if env.ct_mark != mark_before:
            changes.append(Change("ctmark", hex(mark_before), hex(env.ct_mark)))
        if res.res is not None and res.res.nat is not None:
            nat = res.res.nat
            nat_bound_here = True
            if env.ct is not None:
                env.ct = ct_after_nat(env.ct, env.pkt)
        config: list[ConfigRef] = []
        if native is not None:
            config.extend(native.config)
            decision = native.decision
        elif table is not None and res.decided_rule is not None:
            where_src = f" ({table.source} line {res.decided_rule.line})" if table.source else ""
            r = res.decided_rule
            config.append(ConfigRef("iptables", r.text, f"{r.table}/{r.chain} #{r.index}{where_src}"))
            decision = f"{res.verdict.upper()} by rule {r.chain} #{r.index}: {r.text}"
            if res.res is not None and res.res.note:
                decision += f" ({res.res.note})"
        elif table is not None:
            chain_line = table.chains.get(base.chain)
            config.append(ConfigRef("iptables", f":{base.chain} {base.policy}",
                                    f"{base.table}/{base.chain} policy"
                                    + (f" ({table.source} line {chain_line.line})" if chain_line and chain_line.line else "")))
            decision = (f"policy {base.policy}: no rule decided" if res.evals
                        else f"policy {base.policy} (no rules)")
        if base.kind == "nat" and res.verdict == "accept" and nat is None:
            decision += "; no NAT for this flow here (null binding)"
        if res.verdict in ("drop", "reject"):
            result = StageResult.DROPPED
        elif res.uncertain:
            result = StageResult.UNCERTAIN
        elif changes:
            result = StageResult.CHANGED
        else:
            result = StageResult.PASSED
        stages.append(_stage_base(base, env.pkt, result, _summary(base), decision,
                                  config=tuple(config), changes=tuple(changes),
                                  rules=tuple(res.evals), notes=tuple(notes),
                                  uncertain=res.uncertain))
        if res.verdict != "accept":
            return _outcome(stages, env, pkt, res.verdict, res, nat, start_mark, hits, uncertain)
    if not conntrack_done:
        conntrack_step()
    if not ct_nat_done and (env.ct is None or not env.ct.nat_pending):
        st = ct_nat_stage(None)
        if st is not None:
            stages.append(st)
    return _outcome(stages, env, pkt, "accept", None, nat, start_mark, hits, uncertain)


def _outcome(stages: list[Stage], env: Env, pkt: Packet, verdict: str, res: _ChainResult | None,
             nat: NatBinding | None, start_mark: int, hits: list[RuleRef], uncertain: bool) -> HookOutcome:
    ct = env.ct
    if ct is not None and env.ct_mark != ct.mark:
        ct = replace(ct, mark=env.ct_mark, entry=replace(ct.entry, mark=env.ct_mark) if ct.entry else None)
    if env.notrack and (ct is None or ct.state is not CtState.UNTRACKED):
        ct = untracked_view("NOTRACK: the packet is not tracked")
    return HookOutcome(
        stages=tuple(stages), packet=env.pkt, verdict=verdict,
        decided_by=res.decided if res is not None else None,
        reject=res.res.reject if res is not None and res.res is not None else None,
        nat=nat, ct_mark=env.ct_mark if env.ct_mark != start_mark else None,
        notrack=env.notrack, rules_hit=tuple(hits),
        uncertain=uncertain or any(s.uncertain for s in stages), ct=ct,
        changes=tuple(_changes(pkt, env.pkt)),
    )
