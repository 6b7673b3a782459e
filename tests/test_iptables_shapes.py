"""The parser's fast path (one compiled maker per rule shape) gives exactly what the general
parser gives: on every fixture, on the kube-proxy generator's output, and on lines built to
look like a compiled shape while differing where a value changes how a line reads.

``_parse(..., fast=False)`` is the general parser alone; both are compared value for value
(the dumps), or error for error (message and line).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from benchmarks.kubeproxy import generate
from journey.errors import RuleParseError
from journey.model.family import Family
from journey.model.ruleset import Backend, IptablesDump
from journey.snapshot import iptables_save
from journey.snapshot.iptables_save import _parse, parse_iptables_save

DATA = Path(__file__).parent / "data" / "iptables"
FIXTURES = sorted(p.name for p in DATA.iterdir() if p.suffix == ".txt")


def outcome(text: str, fast: bool) -> IptablesDump | tuple[str, int | None]:
    try:
        return _parse(text, "t.rules", Family.IPV4, Backend.NFT, fast=fast)
    except RuleParseError as e:
        return (e.message, e.line)


def assert_same(text: str) -> IptablesDump | tuple[str, int | None]:
    fast, general = outcome(text, True), outcome(text, False)
    assert fast == general
    return fast


@pytest.fixture
def made_by_makers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many rules the compiled makers built (a one-item list, counted during the test)."""
    count = [0]
    compile_ = iptables_save._Parser._compile

    def counting(self: iptables_save._Parser, *args: object) -> Callable[..., object] | None:
        make = compile_(self, *args)  # type: ignore[arg-type]
        if make is None:
            return None

        def counted(*a: object) -> object:
            r = make(*a)  # type: ignore[arg-type]
            count[0] += r is not None
            return r
        return counted

    monkeypatch.setattr(iptables_save._Parser, "_compile", counting)
    return count


@pytest.mark.parametrize("name", FIXTURES)
def test_fixtures_fast_equals_general(name: str) -> None:
    text = (DATA / name).read_text()
    result = assert_same(text)
    assert isinstance(result, IptablesDump) and result.rule_count > 0


@pytest.mark.parametrize(("services", "endpoints"), [(300, 3), (120, 1), (60, 5)])
def test_kubeproxy_generator_fast_equals_general(services: int, endpoints: int,
                                                 made_by_makers: list[int]) -> None:
    text = generate(services, endpoints)
    dump = assert_same(text)
    assert isinstance(dump, IptablesDump)
    # and the fast path did the work: all but the first lines of each shape
    assert made_by_makers[0] > 0.9 * dump.rule_count


def test_equal_values_stay_shared() -> None:
    """The makers share equal matches and targets, as the general parser's caches do (a few
    copies are made by lines read before their shape was compiled)."""
    d = parse_iptables_save(generate(500, 3), source="k", family=Family.IPV4,
                            backend=Backend.NFT)
    values: dict[object, set[int]] = {}
    for t in d.tables:
        for c in t.chains:
            for r in c.rules:
                for v in (*r.matches, r.target):
                    values.setdefault(v, set()).add(id(v))
    copies = sum(len(ids) - 1 for ids in values.values())
    assert len(values) > 8000 and copies < 0.01 * len(values)


HEAD = "*filter\n:INPUT ACCEPT [0:0]\n:FOO - [0:0]\n:BAR - [0:0]\n"

# (a line, its variants): the line three times compiles its shape, then each variant must
# read exactly as the general parser reads it (a result or the same error)
SHAPES = {
    "dport": ("-A INPUT -s 10.0.0.1/32 -p tcp -m tcp --dport 80 -j ACCEPT",
              ["-A INPUT -s 10.0.0.2/32 -p tcp -m tcp --dport -x -j ACCEPT",
               "-A INPUT -s 10.0.0.2/32 -p tcp -m tcp --dport -5 -j ACCEPT",
               "-A INPUT -s 10.0.0.2/32 -p tcp -m tcp --dport --x -j ACCEPT",
               "-A INPUT -s -x -p tcp -m tcp --dport 80 -j ACCEPT",
               "-A INPUT -s 10.0.0.3/32 -p udp -m udp --dport 53 -j ACCEPT",
               "-A INPUT -s 10.0.0.3/32 -p tcp -m tcp --dport 81 -j FOO",
               "-A INPUT -s 10.0.0.3/32 -p tcp -m tcp --dport 81 -j NOSUCH",
               "-A NOPE -s 10.0.0.3/32 -p tcp -m tcp --dport 81 -j ACCEPT",
               "-I INPUT -s 10.0.0.3/32 -p tcp -m tcp --dport 81 -j ACCEPT",
               "-A INPUT -s 10.0.0.3/32 -p 6 -m tcp --dport 81 -j ACCEPT"]),
    "implicit": ("-A INPUT -p tcp --dport 22 -j ACCEPT",
                 ["-A INPUT -p udp --dport 53 -j ACCEPT",
                  "-A INPUT -p gre --dport 53 -j ACCEPT",
                  "-A INPUT -p tcp --dport ! -j ACCEPT",
                  "-A INPUT -p TCP --dport 23 -j ACCEPT"]),
    "comment": ('-A INPUT -m comment --comment "a b" -j FOO',
                ['-A INPUT -m comment --comment "-x y" -j FOO',
                 '-A INPUT -m comment --comment "" -j FOO',
                 '-A INPUT -m comment --comment "!" -j FOO',
                 '-A INPUT -m comment --comment "a"b -j FOO',
                 '-A INPUT -m comment --comment "--x" -j BAR']),
    "comment unquoted": ("-A INPUT -m comment --comment abc -j FOO",
                         ["-A INPUT -m comment --comment -x -j FOO",
                          "-A INPUT -m comment --comment ! -j FOO",
                          "-A INPUT -m comment --comment -j -j FOO",
                          "-A INPUT -m comment --comment x -g FOO"]),
    "generic quoted": ('-A INPUT -m foo --bar "a b" -j ACCEPT',
                       ['-A INPUT -m foo --bar "" -j ACCEPT',
                        '-A INPUT -m foo --bar "-x" -j ACCEPT',
                        '-A INPUT -m baz --bar "x y" -j ACCEPT']),
    "negations": ("-A INPUT ! -s 10.0.0.0/8 -m conntrack ! --ctstate NEW -j DROP",
                  ["-A INPUT ! -s ! -m conntrack ! --ctstate NEW -j DROP",
                   "-A INPUT ! -s 10.0.0.0/8 -m conntrack ! --ctstate -m -j DROP",
                   "-A INPUT -s ! 10.0.0.0/8 -m conntrack ! --ctstate NEW -j DROP"]),
    "set": ("-A INPUT -m set --match-set allow src -j ACCEPT",
            ["-A INPUT -m set --match-set allow -x -j ACCEPT",
             "-A INPUT -m set --match-set -x src -j ACCEPT",
             '-A INPUT -m set --match-set allow "-x" -j ACCEPT']),
    "target options": ("-A INPUT -j LOG --log-prefix abc --log-level 4",
                       ["-A INPUT -j LOG --log-prefix -x --log-level 4",
                        "-A INPUT -j LOG --log-prefix abc --log-level -4",
                        "-A INPUT -j LOG --log-prefix abc --log-level --x"]),
    "goto": ("-A INPUT -p tcp -g FOO",
             ["-A INPUT -p tcp -g NOSUCH", "-A INPUT -p tcp -g BAR"]),
    "counters": ("-A INPUT -s 1.2.3.4 -c 1 2 -j ACCEPT",
                 ["-A INPUT -s 1.2.3.5 -c 3 x -j ACCEPT", "-A INPUT -s 1.2.3.5 -c 3 4 -j FOO"]),
    "multi-value": ("-A INPUT -m foo --bar a b c -j ACCEPT",
                    ["-A INPUT -m foo --bar a -b c -j ACCEPT",
                     "-A INPUT -m foo --bar a b -j -j ACCEPT"]),
}


@pytest.mark.parametrize("learn", [True, False], ids=["learning", "no-learning"])
@pytest.mark.parametrize("name", sorted(SHAPES))
def test_lines_unlike_their_shape(name: str, learn: bool, monkeypatch: pytest.MonkeyPatch,
                                  ) -> None:
    if not learn:  # option and module names not learned: shapes with None in their place
        monkeypatch.setattr(iptables_save, "_MAX_LITERALS", 0)
    line, variants = SHAPES[name]
    for variant in variants:
        for pos in ("after", "between"):
            body = [line] * 3 + [variant] + ([line] if pos == "between" else [])
            assert_same(HEAD + "\n".join(body) + "\nCOMMIT\n")
            # and with iptables-save -c counters in front
            assert_same(HEAD + "\n".join(f"[1:2] {b}" for b in body) + "\nCOMMIT\n")


TRICKY = ["-x", "--x", "!", '""', '"-x"', "-5", "-", "tcp", "udp", "comment", "-j", "--dport",
          "a b", '"a b"', "ACCEPT", "FOO"]


def test_mutated_lines(made_by_makers: list[int]) -> None:
    """Lines of the fixtures and of the generator, repeated so that their shapes compile,
    then with one word swapped for a tricky one: same outcome as the general parser."""
    rng = random.Random(7)
    sources = [(DATA / n).read_text() for n in FIXTURES] + [generate(20, 2)]
    for text in sources:
        lines = text.split("\n")
        rule_at = [k for k, line in enumerate(lines) if "-A " in line and line[0] in "-["]
        for _ in range(25):
            k = rng.choice(rule_at)
            words = lines[k].split(" ")
            j = rng.randrange(words.index("-A") + 2, len(words))
            words[j] = rng.choice(TRICKY)
            mutated = lines[:k] + [lines[k]] * 3 + [" ".join(words)] + lines[k + 1:]
            assert_same("\n".join(mutated))
    assert made_by_makers[0] > 0
