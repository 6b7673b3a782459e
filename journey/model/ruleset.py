"""Parsed iptables rulesets (``iptables-save`` / ``ip6tables-save``, nft-backed and legacy).

Pure data: Dump -> Table -> Chain -> Rule -> Match/Target, each rule keeping its original text,
file and line so every decision can point at the exact configuration line. No I/O, no textual,
no rich. The parser lives in ``journey.snapshot.iptables_save``.

Representation of a rule's conditions: every condition is a ``Match``. The built-in parameters
(``-s -d -i -o -p -f``) become matches of the pseudo-module ``""`` with long option names
(``source``, ``destination``, ``in-interface``, ``out-interface``, ``protocol``, ``fragment``);
``-m MOD --opt val`` becomes ``Match(module=MOD, options=(MatchOption("opt", ("val",)),))``.
A bare ``-p tcp --dport 80`` (implicit module) becomes a ``tcp`` match with ``implicit=True``.
Options keep their values verbatim (strings); the engine interprets them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from journey.model.family import Family


class Backend(enum.StrEnum):
    """Which x_tables implementation holds the rules: both run in the kernel at once."""

    NFT = "nft"  # iptables-nft: nf_tables tables named filter/nat/... (the default on Debian)
    LEGACY = "legacy"  # x_tables via iptables-legacy


@dataclass(frozen=True, slots=True)
class Counters:
    packets: int
    bytes: int


@dataclass(frozen=True, slots=True)
class MatchOption:
    """One option of a match or target: ``! --dport 80`` -> name "dport", values ("80",), negated."""

    name: str
    values: tuple[str, ...] = ()
    negated: bool = False

    def text(self) -> str:
        out = ("! " if self.negated else "") + f"--{self.name}"
        for v in self.values:
            out += " " + quote(v)
        return out


@dataclass(frozen=True, slots=True)
class Match:
    """A condition of a rule: a built-in parameter (module "") or an ``-m`` module with options."""

    module: str
    options: tuple[MatchOption, ...] = ()
    implicit: bool = False  # module loaded implicitly by -p (no "-m" in the text)

    def option(self, name: str) -> MatchOption | None:
        for o in self.options:
            if o.name == name:
                return o
        return None

    def text(self) -> str:
        """The condition as iptables-save prints it."""
        if self.module == "":
            short = BUILTIN_SHORT.get(self.options[0].name, "--" + self.options[0].name)
            o = self.options[0]
            out = ("! " if o.negated else "") + short
            for v in o.values:
                out += " " + quote(v)
            return out
        head = "" if self.implicit else f"-m {self.module}"
        body = " ".join(o.text() for o in self.options)
        return (head + " " + body).strip()


BUILTIN_SHORT = {
    "source": "-s",
    "destination": "-d",
    "in-interface": "-i",
    "out-interface": "-o",
    "protocol": "-p",
    "fragment": "-f",
}


class JumpKind(enum.StrEnum):
    JUMP = "jump"  # -j
    GOTO = "goto"  # -g


@dataclass(frozen=True, slots=True)
class Target:
    """The verdict or action of a rule: a standard verdict, a user chain, or a target extension."""

    name: str  # ACCEPT, DROP, RETURN, QUEUE, a chain name, or an extension (DNAT, MARK, ...)
    options: tuple[MatchOption, ...] = ()
    kind: JumpKind = JumpKind.JUMP

    def option(self, name: str) -> MatchOption | None:
        for o in self.options:
            if o.name == name:
                return o
        return None

    def text(self) -> str:
        flag = "-g" if self.kind is JumpKind.GOTO else "-j"
        return " ".join([flag, self.name, *(o.text() for o in self.options)])


@dataclass(frozen=True, slots=True)
class Rule:
    """One ``-A`` line."""

    table: str
    chain: str
    index: int  # 1-based position in its chain
    matches: tuple[Match, ...]
    target: Target | None  # None: no -j (counts only)
    text: str  # the original line without counters, e.g. "-A INPUT -p tcp ... -j ACCEPT"
    line: int  # 1-based line in the source text
    counters: Counters | None = None

    def match(self, module: str) -> Match | None:
        for m in self.matches:
            if m.module == module:
                return m
        return None


@dataclass(frozen=True, slots=True)
class Chain:
    """A built-in chain (with a policy) or a user-defined chain (policy None)."""

    name: str
    policy: str | None  # ACCEPT / DROP for built-ins, None for user chains
    rules: tuple[Rule, ...] = ()
    counters: Counters | None = None
    line: int = 0

    @property
    def builtin(self) -> bool:
        return self.policy is not None


@dataclass(frozen=True, slots=True)
class Table:
    name: str  # filter, nat, mangle, raw, security
    chains: tuple[Chain, ...] = ()
    line: int = 0

    def chain(self, name: str) -> Chain | None:
        for c in self.chains:
            if c.name == name:
                return c
        return None

    @property
    def rule_count(self) -> int:
        return sum(len(c.rules) for c in self.chains)


@dataclass(frozen=True, slots=True)
class IptablesDump:
    """One ``iptables-save``-format dump: a family and a backend, parsed, with its raw text."""

    family: Family
    backend: Backend
    source: str  # command or file name, used in error messages and config references
    text: str  # verbatim dump (stdout of iptables-save)
    tables: tuple[Table, ...] = ()

    def table(self, name: str) -> Table | None:
        for t in self.tables:
            if t.name == name:
                return t
        return None

    @property
    def rule_count(self) -> int:
        return sum(t.rule_count for t in self.tables)


def quote(value: str) -> str:
    """Quote a value the way iptables-save does (double quotes when it holds spaces or quotes)."""
    if value == "" or any(c in value for c in ' \t"\'\\'):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value
