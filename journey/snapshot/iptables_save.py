"""Parser of ``iptables-save`` / ``ip6tables-save`` output (nft-backed and legacy) into the model.

Turns the text of one dump into ``journey.model.ruleset.IptablesDump``: tables, chains (in
declaration order, with policies and counters) and rules, each rule keeping its original text
and line. Every ``-m`` module and every option is kept verbatim (unknown ones included); the
engine interprets them. Input that ``iptables-restore`` would refuse, or that cannot be a dump
at all (binary data, a truncated file, a rule in an undeclared chain), raises
``journey.errors.RuleParseError`` naming the source and line.

It must stay fast (a kube-proxy host holds ~60k rules, and loading them should take no longer
than ``iptables-restore --test`` on them: ``benchmarks/bench_load.py``): a hand-written
tokenizer (no shlex, no per-rule regex) that follows ``add_param_to_argv`` of iptables-restore;
caches of the immutable Match/MatchOption/Target values, which repeat a lot; a fast path that
compiles each rule *shape* seen twice (kube-proxy writes about a dozen) into a function that
builds its Rule directly, checked against the general parser (``_Parser._new_shape``; equal
results on every fixture: tests/test_iptables_shapes.py); and no cyclic-GC work on the new
objects (``long_lived_objects``).

Pure: no I/O, no textual, no rich. Depends only on ``journey.model`` and ``journey.errors``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

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
    "long_lived_objects",
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
# the ASCII bytes that may occur (what _BINARY does not match): an ASCII text is checked by
# deleting them (bytes.translate, 4x faster than the regex on 9 MB), the regex says where
_TEXT_ASCII = bytes(b for b in range(128) if not _BINARY.match(chr(b)))

_NO_QUOTED: frozenset[int] = frozenset()
_ONE_QUOTED = tuple(frozenset((k,)) for k in range(64))

# words with a meaning of their own in a rule (kinds compared with "is")
_K_NOT, _K_MATCH, _K_JUMP, _K_GOTO, _K_COUNTERS, _K_FRAGMENT, _K_PROTO, _K_PARAM = (
    "not", "match", "jump", "goto", "counters", "fragment", "proto", "param")
_SPECIAL: dict[str, str] = {
    "!": _K_NOT, "-m": _K_MATCH, "--match": _K_MATCH, "-j": _K_JUMP, "--jump": _K_JUMP,
    "-g": _K_GOTO, "--goto": _K_GOTO, "-c": _K_COUNTERS, "--set-counters": _K_COUNTERS,
    **{w: (_K_FRAGMENT if long == "fragment" else _K_PROTO if long == "protocol" else _K_PARAM)
       for w, long in _BUILTINS.items()},
}


# -- fast path (see _Parser._new_shape) -------------------------------------------------------
# a shape: the words with each value replaced by None, and the positions of quoted words
_ShapeKey = tuple[tuple[str | None, ...], frozenset[int]]
# builds the Rule of a line of one shape: (words, table, index, text, line, counters) -> Rule,
# or None when a value would change how the general parser reads the line
_Maker = Callable[[list[str], str, int, str, int, "Counters | None"], "Rule | None"]
# the words a shape always keeps (option names, module and protocol names are learned)
_LITERAL_SEED: dict[str, str] = {w: w for w in (*_SPECIAL, "", "-A", "--append")}
# the word after these is a name that changes how the rest is read (module, protocol)
_NAMES_NEXT = frozenset({"-m", "--match", "-p", "--protocol"})
_MAX_LITERALS = 4096
_MAX_SHAPES = 1024  # compiled makers per dump (a kube-proxy dump has about a dozen)
_MAX_SEEN = 65536


# iptables-save (nf_tables) on a native nft table it cannot print: 1.8.9 says "contains
# incompatible base-chains", older and newer versions "is incompatible"
_INCOMPATIBLE = re.compile(r"# Table `(\w+)' (?:contains incompatible|is incompatible)")


class _NoPlan(Exception):
    """This shape cannot be compiled: its lines take the general path."""


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
    words: list[str]
    if "\\" not in text:
        parts = text.split('"')
        if len(parts) == 3:  # the common case: one quoted word (a kube-proxy comment)
            head, word, tail = parts
            words = head.split()
            if words and not head[-1].isspace():
                words[-1] += word  # glued to the word before: a"b c"
            else:
                words.append(word)
            k = len(words) - 1
            quoted1 = _ONE_QUOTED[k] if k < len(_ONE_QUOTED) else frozenset((k,))
            if tail:
                words += tail.split()
            return words, quoted1
        if len(parts) % 2 == 0:
            raise _ParseFail("unterminated quote")
        words = []
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

    def __init__(self, source: str, *, fast: bool = True) -> None:
        self.source = source
        self.opt_cache: dict[tuple[str, tuple[str, ...], bool], MatchOption] = {}
        self.match_cache: dict[tuple[object, ...], Match] = {}
        self.target_cache: dict[tuple[object, ...], Target] = {}
        self.counter_text_cache: dict[str, Counters] = {}
        self.builtin_cache: dict[tuple[str, tuple[str, ...], bool], Match] = {}
        # the fast path (see _Shapes): shape -> rule maker (None: this shape takes the
        # general path), the words kept literally in a shape, shapes seen once
        self.fast = fast
        self.plans: dict[_ShapeKey, _Maker | None] = {}
        self.literal: dict[str, str] = dict(_LITERAL_SEED)
        self.literal_get = self.literal.get
        self.seen_once: set[_ShapeKey] = set()
        self.value_caches: dict[tuple[object, ...], dict[object, Any]] = {}
        self._scratch: _Parser | None = None
        self.goto_names: set[str] = set()  # of every -g target made (checked at COMMIT)

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
    def rule(self, text: str, lineno: int, table: _TableState, counters: Counters | None,
             tokens: tuple[list[str], frozenset[int]] | None = None) -> Rule:
        """Parse one ``-A CHAIN ...`` line (counters prefix already removed; ``tokens``:
        ``tokenize(text)`` when the caller has it)."""
        words, quoted = tokenize(text) if tokens is None else tokens
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
        if self.fast:
            key = (tuple(map(self.literal_get, words)), quoted)
            make = self.plans.get(key)
            if make is None and key not in self.plans:
                make = self._new_shape(key, words, quoted)
            if make is not None:
                r = make(words, table.name, len(rules) + 1, text, lineno, counters)
                if r is not None:
                    rules.append(r)
                    return r
        matches, target, counters = self.conditions(words, quoted, counters)
        r = Rule(table.name, chain, len(rules) + 1, matches, target, text, lineno, counters)
        rules.append(r)
        return r

    def conditions(self, words: list[str], quoted: frozenset[int], counters: Counters | None,
                   ) -> tuple[tuple[Match, ...], Target | None, Counters | None]:
        """The general parse of a rule's words (after ``-A CHAIN``): its matches, its target
        and its counters (``-c`` overrides the ``[pkts:bytes]`` prefix)."""
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
                    if (v[:1] == "-" and len(v) > 1 and (v[1] == "-" or v[1].isalpha())
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
                if target_kind is JumpKind.GOTO:
                    self.goto_names.add(target_name)
        return tuple(matches), target, counters

    # -- the fast path: one compiled maker per rule shape ---------------------------------
    #
    # A rule's *shape* is its words with every value replaced by None (``map(literal.get)``:
    # options, ``!``, module and protocol names stay), plus which words were quoted. The
    # general parser's control flow depends only on the shape, except where it looks at a
    # value's first character (values of most options stop at the next ``-x`` word): those
    # values are checked by the maker, which returns None (general path) when one starts
    # with "-". The second time a shape is seen, the general parser is run on the line with
    # each value replaced by a marker, which shows where each value lands in the matches and
    # target; from that a small function is compiled that builds the Rule directly, and it
    # is checked against the general parse of the same line before it is used.

    def _new_shape(self, key: _ShapeKey, words: list[str], quoted: frozenset[int],
                   ) -> _Maker | None:
        shape = key[0]
        learned = False
        for j in range(2, len(words)):
            w = words[j]
            if (shape[j] is None and len(self.literal) < _MAX_LITERALS
                    and (not w or w[0] in "-!" or words[j - 1] in _NAMES_NEXT)):
                self.literal[w] = w  # an option, module or protocol name: keep it in shapes
                learned = True
        if learned:
            return None  # the next line of this shape gets a key with these words in it
        if key not in self.seen_once:
            if len(self.seen_once) < _MAX_SEEN:
                self.seen_once.add(key)
            return None
        self.seen_once.discard(key)
        if len(self.plans) >= _MAX_SHAPES:
            return None
        make = self._compile(shape, words, quoted)
        self.plans[key] = make
        return make

    def _compile(self, shape: tuple[str | None, ...], words: list[str],
                 quoted: frozenset[int]) -> _Maker | None:
        slots = [j for j in range(2, len(words)) if shape[j] is None]
        for j in slots:
            w = words[j]
            if not w or w[0] in "-!" or shape[j - 1] in _NAMES_NEXT:
                return None
        if "-c" in shape or "--set-counters" in shape:
            return None
        marked = list(words)
        for j in slots:
            marked[j] = f"\x00{j}"
        if self._scratch is None:
            self._scratch = _Parser(self.source, fast=False)
        try:
            m_matches, m_target, m_counters = self._scratch.conditions(marked, quoted, None)
            matches, target, _ = self.conditions(words, quoted, None)
        except _ParseFail:
            return None
        if m_counters is not None or len(m_matches) != len(matches):
            return None
        return _Shapes(self, words, quoted, slots).compile(m_matches, m_target, matches, target)


def _is_marker(value: str) -> bool:
    return value[:1] == "\x00"


class _Shapes:
    """Compiles one rule shape into a maker (see ``_Parser._new_shape``).

    Built from two general parses of the same line: one with each value replaced by a marker
    ``"\\x00<word index>"`` (which shows where each word lands) and the real one (whose
    objects are reused for the parts that hold no value, and seed the caches). The generated
    source holds only indices and names of constants: no text of the dump.
    """

    def __init__(self, parser: _Parser, words: list[str], quoted: frozenset[int],
                 slots: list[int]) -> None:
        self.parser = parser
        self.words = words
        self.slots = set(slots)
        self.used: set[int] = set()
        self.guards: list[int] = []
        self.ns: dict[str, Any] = {"Rule": Rule, "Match": Match, "MatchOption": MatchOption,
                                   "Target": Target}
        self.lines: list[str] = []
        # (name in ns, signature, key, real object): the caches of values, bound after the
        # maker was checked against the general parse
        self.caches: list[tuple[str, tuple[object, ...], object, object]] = []

    def new(self, var: str, cls: type, args: list[str], indent: str) -> list[str]:
        """Statements that set ``var`` to ``cls(*args)``. For a frozen slotted dataclass
        without __post_init__: ``object.__new__`` and the slots' setters, which is what its
        __init__ does, minus a call and a ``object.__setattr__`` lookup per field."""
        fields = dataclasses.fields(cls)
        if (hasattr(cls, "__post_init__") or "__slots__" not in cls.__dict__
                or len(fields) != len(args) or not all(f.init for f in fields)):
            return [f"{indent}{var} = {self.const(cls)}({', '.join(args)})"]
        self.ns["new"] = object.__new__
        out = [f"{indent}{var} = new({self.const(cls)})"]
        for f, a in zip(fields, args, strict=True):
            setter = f"set_{cls.__name__}_{f.name}"
            self.ns[setter] = getattr(cls, f.name).__set__
            out.append(f"{indent}{setter}({var}, {a})")
        return out

    def const(self, value: object) -> str:
        name = f"c{len(self.ns)}"
        self.ns[name] = value
        return name

    def value(self, v: str, guard: bool, slot_exprs: list[str]) -> str:
        if not _is_marker(v):
            return self.const(v)
        j = int(v[1:])
        if j not in self.slots or j in self.used:
            raise _NoPlan
        self.used.add(j)
        if guard:
            self.guards.append(j)
        slot_exprs.append(f"w[{j}]")
        return f"w[{j}]"

    def options(self, marked: tuple[MatchOption, ...], real: tuple[MatchOption, ...],
                builtin: bool, slot_exprs: list[str], n: int,
                ) -> tuple[str, tuple[object, ...], list[str]]:
        """Source of the options tuple of cached value ``n``, its signature (values None where
        a word goes) and the statements that make its new options."""
        if len(marked) != len(real):
            raise _NoPlan
        parts: list[str | tuple[str, list[str], bool]] = []
        sig: list[object] = []
        for mo, ro in zip(marked, real, strict=True):
            if _is_marker(mo.name) or len(mo.values) != len(ro.values):
                raise _NoPlan
            sig.append((mo.name, tuple(None if _is_marker(v) else v for v in mo.values),
                        mo.negated))
            if mo == ro:
                parts.append(self.const(ro))
                continue
            vals: list[str] = []
            for k, v in enumerate(mo.values):
                # a value the general parser takes whatever it is (built-in parameter, first
                # word of a string option, -j target) needs no check; the others stop at a
                # word that looks like an option, so a "-..." word there means general path
                free = builtin or (mo.name in _STRING_OPTIONS
                                   and (k == 0 or mo.name not in _SET_OPTIONS))
                vals.append(self.value(v, not free, slot_exprs))
            parts.append((self.const(mo.name), vals, mo.negated))
        exprs: list[str] = []
        stmts: list[str] = []
        for i, part in enumerate(parts):
            if isinstance(part, str):
                exprs.append(part)
                continue
            name, vals, negated = part
            # values that are the whole cache key (of 2+ words): the key is the values tuple
            values = (f"k{n}" if vals == slot_exprs and len(vals) > 1
                      else f"({', '.join(vals)},)")
            stmts += self.new(f"o{n}_{i}", MatchOption, [name, values, repr(negated)],
                              "        ")
            exprs.append(f"o{n}_{i}")
        return "(" + "".join(e + ", " for e in exprs) + ")", tuple(sig), stmts

    def cached(self, sig: tuple[object, ...], slot_exprs: list[str], stmts: list[str],
               real: object) -> str:
        """Look ``v<n>`` up by its words (one word: the word itself, else their tuple) in a
        cache of equal values; ``stmts`` make it."""
        if not slot_exprs:
            raise _NoPlan
        n = len(self.caches)
        var = f"v{n}"
        cache = f"cache{n}"
        self.ns[cache] = {}
        words = [self.words[int(e[2:-1])] for e in slot_exprs]
        key: object = words[0] if len(words) == 1 else tuple(words)
        self.caches.append((cache, sig, key, real))
        key_expr = slot_exprs[0] if len(slot_exprs) == 1 else f"({', '.join(slot_exprs)},)"
        self.lines += [f"    k{n} = {key_expr}",
                       f"    {var} = {cache}.get(k{n})",
                       f"    if {var} is None:",
                       *stmts,
                       f"        {cache}[k{n}] = {var}"]
        return var

    def match(self, marked: Match, real: Match) -> str:
        if marked == real:
            return self.const(real)
        if _is_marker(marked.module) or (marked.module, marked.implicit) != (real.module,
                                                                           real.implicit):
            raise _NoPlan
        slot_exprs: list[str] = []
        n = len(self.caches)
        opts, osig, stmts = self.options(marked.options, real.options, marked.module == "",
                                         slot_exprs, n)
        stmts += self.new(f"v{n}", Match, [self.const(marked.module), opts,
                                           repr(marked.implicit)], "        ")
        return self.cached(("m", marked.module, marked.implicit, osig), slot_exprs, stmts,
                           real)

    def target(self, marked: Target | None, real: Target | None) -> str:
        if marked is None or real is None:
            if marked is not real:
                raise _NoPlan
            return "None"
        if marked == real:
            return self.const(real)
        if marked.kind is not real.kind:
            raise _NoPlan
        slot_exprs: list[str] = []
        n = len(self.caches)
        name = self.value(marked.name, False, slot_exprs)
        opts, osig, stmts = self.options(marked.options, real.options, False, slot_exprs, n)
        stmts += self.new(f"v{n}", Target, [name, opts, self.const(marked.kind)], "        ")
        sig = ("t", None if _is_marker(marked.name) else marked.name, marked.kind, osig)
        var = self.cached(sig, slot_exprs, stmts, real)
        if marked.kind is JumpKind.GOTO:  # a new -g target: its chain is checked at COMMIT
            self.ns["goto_names"] = self.parser.goto_names
            self.lines.append(f"        goto_names.add({var}.name)")
        return var

    def compile(self, marked_matches: tuple[Match, ...], marked_target: Target | None,
                matches: tuple[Match, ...], target: Target | None) -> _Maker | None:
        try:
            exprs = [self.match(mm, rm)
                     for mm, rm in zip(marked_matches, matches, strict=True)]
            texpr = self.target(marked_target, target)
        except _NoPlan:
            return None
        if self.used != self.slots:
            return None
        src = ["def make(w, table, index, text, line, counters):"]
        if self.guards:
            src += ["    if " + " or ".join(f'w[{j}][:1] == "-"' for j in self.guards) + ":",
                    "        return None"]
        src += self.lines
        src += self.new("r", Rule, ["table", "w[1]", "index",
                                     f"({''.join(e + ', ' for e in exprs)})", texpr, "text",
                                     "line", "counters"], "    ")
        src.append("    return r")
        exec("\n".join(src), self.ns)  # source made of indices and names only
        make: _Maker = self.ns.pop("make")  # (no cycle function <-> its globals)
        # check the maker (building every value: its caches are still empty) against the
        # general parse of the same line, then bind the shared caches, seeded with the
        # general parse's objects so equal values stay one object
        words = self.words
        expect = Rule("t", words[1], 1, matches, target, "", 0, None)
        if make(words, "t", 1, "", 0, None) != expect:
            return None
        for cache, sig, key, real in self.caches:
            shared = self.parser.value_caches.setdefault(sig, {})
            shared.setdefault(key, real)
            self.ns[cache] = shared
        return make

def parse_iptables_save(text: str, *, source: str, family: Family,
                        backend: Backend) -> IptablesDump:
    """Parse the text of ``iptables-save`` / ``ip6tables-save`` (with or without ``-c``).

    ``source`` names the command or file in errors and config references. Raises
    ``RuleParseError`` (with file and line) for anything iptables-restore would refuse.
    """
    bad = (None if text.isascii() and not text.encode("ascii").translate(None, _TEXT_ASCII)
           else _BINARY.search(text))
    if bad is not None:
        pos = bad.start()
        ch = ord(bad.group())
        what = (f"undecodable byte 0x{ch - 0xDC00:02x}" if 0xDC80 <= ch <= 0xDCFF
                else f"control character 0x{ch:02x}")
        raise RuleParseError(f"binary data, not an iptables-save dump ({what})", file=source,
                             line=text.count("\n", 0, pos) + 1)
    with long_lived_objects():
        return _parse(text, source, family, backend)


@contextlib.contextmanager
def long_lived_objects() -> Iterator[None]:
    """Pause the cyclic GC while many long-lived objects with no cycles are built (a parsed
    dump, a loaded snapshot), then hand them straight to the oldest GC generation.

    The parse of 60k rules allocates ~450k objects that the GC can track and frees none.
    Running, the GC would rescan the growing heap again and again (2x the parse time). Paused,
    the objects pile up in the youngest generation, and the first collection after the pause
    would traverse all of them only to free nothing (0.15-0.2 s), then the middle generation
    would again: instead they are moved to the oldest one (``gc.freeze`` + ``gc.unfreeze``:
    list splices, no traversal). The young generations are collected first, so what is
    promoted is what was made meanwhile. Inside a GC already disabled (a nested use), or when
    the process froze objects itself (``gc.freeze`` before a fork): the pause only.
    """
    if not gc.isenabled():
        yield
        return
    gc.collect(1)
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        gc.enable()


def _parse(text: str, source: str, family: Family, backend: Backend, *,
           fast: bool = True) -> IptablesDump:
    """The parse; ``fast=False`` turns the compiled shapes off (tests compare both)."""
    p = _Parser(source, fast=fast)
    tables: list[Table] = []
    seen_tables: set[str] = set()
    cur: _TableState | None = None
    lineno = 0
    incompatible: set[str] = set()  # tables iptables-save says are native nft (see below)
    # the fast path of _Parser.rule, inlined for the common line (see _Parser._new_shape)
    plans_get = p.plans.get
    literal_get = p.literal_get
    cur_rules: dict[str, list[Rule]] = {}
    cur_name = ""
    try:
        for lineno, raw in enumerate(text.split("\n"), 1):
            line = raw.strip()
            if not line:
                continue
            c = line[0]
            if c == "-":
                if cur is None:
                    raise _ParseFail("rule before any '*table' line")
                tokens = tokenize(line)
                if fast:
                    words = tokens[0]
                    make = plans_get((tuple(map(literal_get, words)), tokens[1]))
                    if make is not None:  # a compiled shape: "-A" or "--append" and a chain
                        rules = cur_rules.get(words[1])
                        if rules is not None:
                            r = make(words, cur_name, len(rules) + 1, line, lineno, None)
                            if r is not None:
                                rules.append(r)
                                continue
                p.rule(line, lineno, cur, None, tokens)
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
                m = _INCOMPATIBLE.match(line)
                if m:
                    incompatible.add(m.group(1))
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
                cur_rules = cur.rules
                cur_name = name
            elif line == "COMMIT":
                if cur is None:
                    raise _ParseFail("COMMIT without a '*table' line")
                # A native nft table of an iptables name (``table ip nat``) prints as a comment
                # and made-up built-in chains (plus the rules of its regular chains that
                # iptables can print): it is not iptables-nft's, so it must not become an
                # iptables table with stages of its own (the nft dump has all of it).
                if cur.name not in incompatible:
                    tables.append(_finish_table(cur, p.goto_names))
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


def _finish_table(t: _TableState, goto_names: set[str]) -> Table:
    chains: list[Chain] = []
    # every -g target made so far is a chain of this table: no rule to look at
    check = not goto_names.issubset(t.chains)
    for name, (pol, counters, line) in t.chains.items():
        rules = t.rules[name]
        for r in rules if check else ():
            tg = r.target
            if tg is None or tg.name in t.chains:
                continue
            if tg.kind is JumpKind.GOTO:
                raise _CommitFail(f"-g {tg.name}: no such chain in table {t.name!r}", r.line)
            # A name that is neither a chain nor a known extension is kept as a target
            # extension journey does not know: the engine reports it as uncertain.
        chains.append(Chain(name, pol, tuple(rules), counters, line))
    return Table(t.name, tuple(chains), t.line)
