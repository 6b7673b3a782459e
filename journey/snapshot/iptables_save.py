"""Parser of ``iptables-save`` / ``ip6tables-save`` output (nft-backed and legacy) into the model.

Turns the text of one dump into ``journey.model.ruleset.IptablesDump``: tables, chains (in
declaration order, with policies and counters) and rules, each rule keeping its original text
and line. Every ``-m`` module and every option is kept verbatim (unknown ones included); the
engine interprets them. Input that ``iptables-restore`` would refuse, or that cannot be a dump
at all (binary data, a truncated file, a rule in an undeclared chain), raises
``journey.errors.RuleParseError`` naming the source and line.

It must stay fast (a kube-proxy host holds ~60k rules): a hand-written tokenizer (no shlex, no
per-rule regex) that follows ``add_param_to_argv`` of iptables-restore, and caches of the
immutable Match/MatchOption/Target values, which repeat a lot.

Pure: no I/O, no textual, no rich. Depends only on ``journey.model`` and ``journey.errors``.
"""

from __future__ import annotations

import gc
import re
from dataclasses import dataclass, field

from journey.errors import RuleParseError
from journey.model.family import Family
from journey.model.ruleset import (
    Backend,
    Chain,
    Counters,
    IptablesDump,
    JumpKind,
    Match,
    MatchOption,
    Rule,
    Table,
    Target,
)

__all__ = [
    "KNOWN_TABLES",
    "KNOWN_TARGETS",
    "STANDARD_VERDICTS",
    "parse_iptables_save",
    "parse_iptables_save_bytes",
    "tokenize",
]

KNOWN_TABLES = frozenset({"filter", "nat", "mangle", "raw", "security"})

STANDARD_VERDICTS = frozenset({"ACCEPT", "DROP", "RETURN", "QUEUE"})

# Target extensions shipped by iptables 1.8.x (libxt_*, libipt_*, libip6t_*). A ``-j NAME``
# that is neither one of these nor a chain declared in the table is refused, as
# iptables-restore refuses it ("Couldn't load target").
KNOWN_TARGETS = frozenset({
    *STANDARD_VERDICTS,
    "AUDIT", "CHECKSUM", "CLASSIFY", "CLUSTERIP", "CONNMARK", "CONNSECMARK", "CT", "DNAT",
    "DNPT", "DSCP", "ECN", "HL", "HMARK", "IDLETIMER", "LED", "LOG", "MARK", "MASQUERADE",
    "MIRROR", "NETMAP", "NFLOG", "NFQUEUE", "NOTRACK", "RATEEST", "REDIRECT", "REJECT", "SAME",
    "SECMARK", "SET", "SNAT", "SNPT", "SYNPROXY", "TCPMSS", "TCPOPTSTRIP", "TEE", "TOS",
    "TPROXY", "TRACE", "TTL", "ULOG",
    # xtables-addons and other out-of-tree targets seen on real hosts
    "ACCOUNT", "CHAOS", "DELUDE", "DHCPMAC", "DNETMAP", "ECHO", "IPMARK", "LOGMARK", "PROTO",
    "RAWDNAT", "RAWSNAT", "STEAL", "SYSRQ", "TARPIT", "JOOL", "JOOL_SIIT",
})

# Built-in parameters, short and long spellings -> the long name used in the model.
_BUILTINS: dict[str, str] = {
    "-s": "source", "--source": "source", "--src": "source",
    "-d": "destination", "--destination": "destination", "--dst": "destination",
    "-i": "in-interface", "--in-interface": "in-interface",
    "-o": "out-interface", "--out-interface": "out-interface",
    "-p": "protocol", "--protocol": "protocol",
    "-f": "fragment", "--fragment": "fragment",
}

# -p PROTO -> the match module iptables loads implicitly for options after it without -m.
_IMPLICIT_MODULE: dict[str, str] = {
    "tcp": "tcp", "6": "tcp",
    "udp": "udp", "17": "udp",
    "icmp": "icmp", "1": "icmp",
    "icmpv6": "icmp6", "ipv6-icmp": "icmp6", "icmp6": "icmp6", "58": "icmp6",
    "sctp": "sctp", "132": "sctp",
    "udplite": "udplite", "136": "udplite",
}

# Options whose single value is an arbitrary string: iptables-save leaves such a value unquoted
# when it is made of [-_0-9A-Za-z] only, so "--comment -x" must not read "-x" as an option.
# set options take two words: the set name (any text) and its flags (src,dst,...)
_SET_OPTIONS = frozenset({"match-set", "add-set", "del-set", "map-set"})

_STRING_OPTIONS = frozenset({
    "comment", "log-prefix", "nflog-prefix", "string", "hex-string", "name", "helper",
    "match-set", "add-set", "del-set", "map-set", "physdev-in", "physdev-out",
})

# Characters that never occur in a text dump: NUL and other C0 controls (tab, LF and CR aside),
# DEL, and lone surrogates (bytes that were not UTF-8, decoded with surrogateescape).
_BINARY = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")

_NO_QUOTED: frozenset[int] = frozenset()

# words with a meaning of their own in a rule (kinds compared with "is")
_K_NOT, _K_MATCH, _K_JUMP, _K_GOTO, _K_COUNTERS, _K_FRAGMENT, _K_PROTO, _K_PARAM = (
    "not", "match", "jump", "goto", "counters", "fragment", "proto", "param")
_SPECIAL: dict[str, str] = {
    "!": _K_NOT, "-m": _K_MATCH, "--match": _K_MATCH, "-j": _K_JUMP, "--jump": _K_JUMP,
    "-g": _K_GOTO, "--goto": _K_GOTO, "-c": _K_COUNTERS, "--set-counters": _K_COUNTERS,
    **{w: (_K_FRAGMENT if long == "fragment" else _K_PROTO if long == "protocol" else _K_PARAM)
       for w, long in _BUILTINS.items()},
}


class _ParseFail(ValueError):
    """A problem in one line; ``parse_iptables_save`` turns it into a RuleParseError with file
    and line. ``tokenize`` lets it out as a plain ValueError."""


def tokenize(text: str) -> tuple[list[str], frozenset[int]]:
    """Split one rule line into words the way iptables-restore does.

    Double quotes group words (a closing quote ends the word); inside quotes a backslash
    escapes the next character (iptables-save writes ``\\"``, ``\\\\`` and ``\\'``). Returns
    the words and the positions of the words that were quoted (a quoted word is always a
    value, even when it reads ``!`` or starts with ``-``). ValueError on an unterminated quote.
    """
    if '"' not in text:
        return text.split(), _NO_QUOTED
    if "\\" not in text:
        parts = text.split('"')
        if len(parts) % 2 == 0:
            raise _ParseFail("unterminated quote")
        words: list[str] = []
        quoted: set[int] = set()
        glue = False  # the previous unquoted part ended in the middle of a word
        for k, part in enumerate(parts):
            if k & 1:
                if glue:
                    words[-1] += part
                else:
                    words.append(part)
                quoted.add(len(words) - 1)
            else:
                split = part.split()
                words.extend(split)
                glue = bool(split) and not part[-1].isspace()
        return words, frozenset(quoted)
    return _tokenize_slow(text)


def _tokenize_slow(text: str) -> tuple[list[str], frozenset[int]]:
    words: list[str] = []
    quoted: set[int] = set()
    buf: list[str] = []
    in_quote = False
    escaped = False
    for ch in text:
        if in_quote:
            if escaped:
                buf.append(ch)
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_quote = False
                quoted.add(len(words))
                words.append("".join(buf))
                buf.clear()
            else:
                buf.append(ch)
        elif ch == '"':
            in_quote = True
        elif ch in " \t\r\n":
            if buf:
                words.append("".join(buf))
                buf.clear()
        else:
            buf.append(ch)
    if in_quote:
        raise _ParseFail("unterminated quote")
    if buf:
        words.append("".join(buf))
    return words, frozenset(quoted)


def _is_option(word: str) -> bool:
    """``-x`` / ``--xyz`` (not ``-``, not a negative number)."""
    return len(word) > 1 and word[0] == "-" and (word[1] == "-" or word[1].isalpha())


@dataclass(slots=True)
class _TableState:
    name: str
    line: int
    chains: dict[str, tuple[str | None, Counters | None, int]] = field(default_factory=dict)
    rules: dict[str, list[Rule]] = field(default_factory=dict)


class _Parser:
    """One dump. Holds the caches of shared immutable values."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.opt_cache: dict[tuple[str, tuple[str, ...], bool], MatchOption] = {}
        self.match_cache: dict[tuple[object, ...], Match] = {}
        self.target_cache: dict[tuple[object, ...], Target] = {}
        self.counter_text_cache: dict[str, Counters] = {}
        self.builtin_cache: dict[tuple[str, tuple[str, ...], bool], Match] = {}

    # -- small shared values -------------------------------------------------------------
    def option(self, name: str, values: tuple[str, ...], negated: bool) -> MatchOption:
        key = (name, values, negated)
        o = self.opt_cache.get(key)
        if o is None:
            o = self.opt_cache[key] = MatchOption(name, values, negated)
        return o

    def counters(self, text: str) -> Counters:
        """``[pkts:bytes]`` (brackets included)."""
        c = self.counter_text_cache.get(text)
        if c is not None:
            return c
        if len(text) < 5 or text[0] != "[" or text[-1] != "]":
            raise _ParseFail(f"bad counters {text!r}: expected [packets:bytes]")
        p, sep, b = text[1:-1].partition(":")
        if not sep or not p.isdigit() or not b.isdigit():
            raise _ParseFail(f"bad counters {text!r}: expected [packets:bytes]")
        c = self.counter_text_cache[text] = Counters(int(p), int(b))
        return c

    def build_match(self, module: str, opts: list[tuple[str, tuple[str, ...], bool]],
                    implicit: bool) -> Match:
        key: tuple[object, ...] = (module, implicit, *opts)
        m = self.match_cache.get(key)
        if m is None:
            m = Match(module, tuple(self.option(*o) for o in opts), implicit)
            self.match_cache[key] = m
        return m

    # -- one rule ------------------------------------------------------------------------
    def rule(self, text: str, lineno: int, table: _TableState,
             counters: Counters | None) -> Rule:
        """Parse one ``-A CHAIN ...`` line (counters prefix already removed)."""
        words, quoted = tokenize(text)
        if len(words) < 2 or words[0] not in ("-A", "--append"):
            if words[0] in ("-A", "--append"):
                raise _ParseFail("-A without a chain name")
            raise _ParseFail(f"unsupported command {words[0]!r}: only iptables-save output "
                             "(-A rules) is understood")
        chain = words[1]
        rules = table.rules.get(chain)
        if rules is None:
            raise _ParseFail(f"rule in chain {chain!r}, which is not declared in table "
                             f"{table.name!r} (no ':{chain} ...' line)")

        builtin_cache = self.builtin_cache
        match_cache = self.match_cache
        matches: list[Match] = []
        # long options go to the open -m module (cur_mod), else to the target (in_target)
        cur_mod: str | None = None
        cur_implicit = False
        cur_opts: list[tuple[str, tuple[str, ...], bool]] = []
        in_target = False
        target_name: str | None = None
        target_kind = JumpKind.JUMP
        target_opts: list[tuple[str, tuple[str, ...], bool]] = []
        proto: str | None = None
        neg = False
        n = len(words)
        i = 2
        while i < n:
            w = words[i]
            i += 1
            kind = _SPECIAL.get(w)
            if kind is not None and (i - 1) not in quoted:
                if kind is _K_NOT:
                    if neg:
                        raise _ParseFail("double '!'")
                    neg = True
                    continue
                if cur_mod is not None:  # any special word closes the open module
                    key: tuple[object, ...] = (cur_mod, cur_implicit, *cur_opts)
                    m = match_cache.get(key)
                    if m is None:
                        m = match_cache[key] = Match(
                            cur_mod, tuple(self.option(*o) for o in cur_opts), cur_implicit)
                    matches.append(m)
                    cur_mod = None
                in_target = False
                if kind is _K_FRAGMENT:
                    bkey: tuple[str, tuple[str, ...], bool] = ("fragment", (), neg)
                elif kind is _K_COUNTERS:
                    if neg:
                        raise _ParseFail(f"'!' before {w}")
                    if i + 1 >= n or not words[i].isdigit() or not words[i + 1].isdigit():
                        raise _ParseFail(f"{w} needs two numbers (packets bytes)")
                    counters = Counters(int(words[i]), int(words[i + 1]))
                    i += 2
                    continue
                else:
                    if i >= n:
                        raise _ParseFail(f"{w} needs a value")
                    v = words[i]
                    i += 1
                    if kind is _K_MATCH:
                        if neg:
                            raise _ParseFail("'!' before -m")
                        cur_mod, cur_implicit, cur_opts = v, False, []
                        continue
                    if kind is _K_JUMP or kind is _K_GOTO:
                        if neg:
                            raise _ParseFail(f"'!' before {w}")
                        if target_name is not None:
                            raise _ParseFail("more than one -j/-g in a rule")
                        target_name = v
                        if kind is _K_GOTO:
                            target_kind = JumpKind.GOTO
                        else:
                            in_target = True
                        continue
                    # a built-in parameter -s/-d/-i/-o/-p with its value
                    if v == "!" and (i - 1) not in quoted:  # old form: -s ! 1.2.3.4
                        if neg:
                            raise _ParseFail("double '!'")
                        neg = True
                        if i >= n:
                            raise _ParseFail(f"{w} needs a value")
                        v = words[i]
                        i += 1
                    bkey = (_BUILTINS[w], (v,), neg)
                    if kind is _K_PROTO:
                        proto = None if neg else v.lower()
                bm = builtin_cache.get(bkey)
                if bm is None:
                    bm = builtin_cache[bkey] = Match("", (self.option(*bkey),))
                matches.append(bm)
                neg = False
                continue
            if w[:2] != "--" or len(w) == 2 or (i - 1) in quoted:
                if _is_option(w) and (i - 1) not in quoted:
                    raise _ParseFail(f"unknown option {w!r}")
                raise _ParseFail(f"unexpected word {w!r} (a value without an option)")

            # a long option of the open module or of the target: collect its values
            name = w[2:]
            vals: list[str] = []
            if name in _STRING_OPTIONS:
                if i >= n:
                    raise _ParseFail(f"{w} needs a value")
                v = words[i]
                i += 1
                if v == "!" and (i - 1) not in quoted and i < n:  # old form: --string ! x
                    neg = True
                    v = words[i]
                    i += 1
                vals.append(v)
                if name in _SET_OPTIONS:
                    if i >= n or _is_option(words[i]):
                        raise _ParseFail(f"{w} needs a set name and flags (e.g. src,dst)")
                    vals.append(words[i])
                    i += 1
            else:
                while i < n:
                    v = words[i]
                    if (v[0] == "-" and len(v) > 1 and (v[1] == "-" or v[1].isalpha())
                            and i not in quoted):
                        break  # the next option
                    if v == "!" and i not in quoted:
                        # "--opt ! value" (old form) or "! --next-option" (belongs to the next)
                        if vals or i + 1 >= n or (_is_option(words[i + 1])
                                                  and i + 1 not in quoted):
                            break
                        if neg:
                            raise _ParseFail("double '!'")
                        neg = True
                        i += 1
                        continue
                    vals.append(v)
                    i += 1
            opt = (name, tuple(vals), neg)
            neg = False
            if in_target:
                target_opts.append(opt)
            elif cur_mod is not None:
                cur_opts.append(opt)
            else:
                # an option outside -m: the module -p loaded implicitly (-p tcp --dport 80)
                mod = _IMPLICIT_MODULE.get(proto) if proto is not None else None
                if mod is None:
                    raise _ParseFail(f"option {w!r} outside of any match module (no -m before "
                                     "it, and no -p protocol that loads one implicitly)")
                cur_mod, cur_implicit, cur_opts = mod, True, [opt]
                # one implicit module per rule: -p tcp --dport 1 -s x --sport 2 -> one tcp match
                for k, m in enumerate(matches):
                    if m.module == mod and m.implicit:
                        cur_opts = [(o.name, o.values, o.negated) for o in m.options] + cur_opts
                        del matches[k]
                        break
        if neg:
            raise _ParseFail("'!' at the end of the rule")
        if cur_mod is not None:
            matches.append(self.build_match(cur_mod, cur_opts, cur_implicit))
        if target_name is None:
            target = None
        else:
            tkey: tuple[object, ...] = (target_name, target_kind, *target_opts)
            target = self.target_cache.get(tkey)
            if target is None:
                target = self.target_cache[tkey] = Target(
                    target_name, tuple(self.option(*o) for o in target_opts), target_kind)
        r = Rule(table.name, chain, len(rules) + 1, tuple(matches), target, text, lineno,
                 counters)
        rules.append(r)
        return r


def parse_iptables_save(text: str, *, source: str, family: Family,
                        backend: Backend) -> IptablesDump:
    """Parse the text of ``iptables-save`` / ``ip6tables-save`` (with or without ``-c``).

    ``source`` names the command or file in errors and config references. Raises
    ``RuleParseError`` (with file and line) for anything iptables-restore would refuse.
    """
    bad = _BINARY.search(text)
    if bad is not None:
        pos = bad.start()
        ch = ord(bad.group())
        what = (f"undecodable byte 0x{ch - 0xDC00:02x}" if 0xDC80 <= ch <= 0xDCFF
                else f"control character 0x{ch:02x}")
        raise RuleParseError(f"binary data, not an iptables-save dump ({what})", file=source,
                             line=text.count("\n", 0, pos) + 1)
    # The parse allocates ~10 objects per rule and frees none: the cyclic GC would rescan the
    # growing heap again and again (2-3x the parse time on 60k rules). Nothing here makes
    # cycles, so it is paused for the duration.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _parse(text, source, family, backend)
    finally:
        if gc_was_enabled:
            gc.enable()


def _parse(text: str, source: str, family: Family, backend: Backend) -> IptablesDump:
    p = _Parser(source)
    tables: list[Table] = []
    seen_tables: set[str] = set()
    cur: _TableState | None = None
    lineno = 0
    try:
        for lineno, raw in enumerate(text.split("\n"), 1):
            line = raw.strip()
            if not line:
                continue
            c = line[0]
            if c == "-":
                if cur is None:
                    raise _ParseFail("rule before any '*table' line")
                p.rule(line, lineno, cur, None)
            elif c == "[":
                if cur is None:
                    raise _ParseFail("rule before any '*table' line")
                end = line.find("]")
                if end < 0:
                    raise _ParseFail("bad counters: no closing ']'")
                counters = p.counters(line[: end + 1])
                rest = line[end + 1:].lstrip()
                if not rest.startswith("-"):
                    raise _ParseFail("counters not followed by a rule")
                p.rule(rest, lineno, cur, counters)
            elif c == "#":
                continue
            elif c == ":":
                if cur is None:
                    raise _ParseFail("chain declaration before any '*table' line")
                _chain_line(p, cur, line, lineno)
            elif c == "*":
                if cur is not None:
                    raise _ParseFail(f"table {line[1:]!r} starts before COMMIT of table "
                                     f"{cur.name!r} (line {cur.line})")
                name = line[1:]
                if name not in KNOWN_TABLES:
                    raise _ParseFail(f"unknown table {name!r} (expected one of "
                                     f"{', '.join(sorted(KNOWN_TABLES))})")
                if name in seen_tables:
                    raise _ParseFail(f"table {name!r} appears twice")
                seen_tables.add(name)
                cur = _TableState(name, lineno)
            elif line == "COMMIT":
                if cur is None:
                    raise _ParseFail("COMMIT without a '*table' line")
                tables.append(_finish_table(cur))
                cur = None
            else:
                shown = line if len(line) <= 60 else line[:57] + "..."
                raise _ParseFail(f"unexpected line {shown!r} (not a table, chain, rule, "
                                 "COMMIT or comment)")
    except _ParseFail as e:
        raise RuleParseError(str(e), file=source, line=lineno) from None
    except _CommitFail as e:
        raise RuleParseError(e.message, file=source, line=e.line) from None
    if cur is not None:
        raise RuleParseError(f"truncated dump: table {cur.name!r} (line {cur.line}) has no "
                             "COMMIT", file=source, line=lineno)
    return IptablesDump(family=family, backend=backend, source=source, text=text,
                        tables=tuple(tables))


def parse_iptables_save_bytes(data: bytes, *, source: str, family: Family,
                              backend: Backend) -> IptablesDump:
    """Like ``parse_iptables_save`` for raw bytes: undecodable bytes name their line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RuleParseError(f"binary data, not an iptables-save dump (undecodable byte "
                             f"0x{data[e.start]:02x})", file=source,
                             line=data.count(b"\n", 0, e.start) + 1) from None
    return parse_iptables_save(text, source=source, family=family, backend=backend)


class _CommitFail(Exception):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def _chain_line(p: _Parser, t: _TableState, line: str, lineno: int) -> None:
    parts = line[1:].split()
    if len(parts) not in (2, 3):
        raise _ParseFail(f"bad chain line {line!r}: expected ':CHAIN POLICY [packets:bytes]'")
    name, policy = parts[0], parts[1]
    if policy == "-":
        pol: str | None = None
    elif policy in ("ACCEPT", "DROP"):
        pol = policy
    else:
        raise _ParseFail(f"bad policy {policy!r} for chain {name!r}: expected ACCEPT, DROP "
                         "or - (user chain)")
    counters = p.counters(parts[2]) if len(parts) == 3 else None
    if name in t.chains:
        raise _ParseFail(f"chain {name!r} declared twice in table {t.name!r}")
    t.chains[name] = (pol, counters, lineno)
    t.rules[name] = []


def _finish_table(t: _TableState) -> Table:
    chains: list[Chain] = []
    for name, (pol, counters, line) in t.chains.items():
        rules = t.rules[name]
        for r in rules:
            tg = r.target
            if tg is None or tg.name in t.chains:
                continue
            if tg.kind is JumpKind.GOTO:
                raise _CommitFail(f"-g {tg.name}: no such chain in table {t.name!r}", r.line)
            # A name that is neither a chain nor a known extension is kept as a target
            # extension journey does not know: the engine reports it as uncertain.
        chains.append(Chain(name, pol, tuple(rules), counters, line))
    return Table(t.name, tuple(chains), t.line)
