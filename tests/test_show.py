"""`journey show SNAPSHOT`: the key items of every section, plain when piped, errors in one line."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console

import journey.cli
from journey.render.show import print_show
from journey.snapshot.fileio import save_snapshot
from journey.snapshot.importdir import import_dir

DATA = Path(__file__).parent / "data"
ANSI = re.compile(r"\x1b\[")


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> None:
    # piped output is 120 columns unless COLUMNS says otherwise (xdist workers may set it)
    monkeypatch.delenv("COLUMNS", raising=False)


@pytest.fixture(scope="module")
def host1_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("show") / "host1.json.gz"
    save_snapshot(import_dir(DATA / "importdir" / "host1"), path)
    return path


@pytest.fixture(scope="module")
def sos_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("show") / "sos.json"
    save_snapshot(import_dir(DATA / "sosreport" / "sos-host1"), path)
    return path


def _show(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert journey.cli.main(["show", str(path)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out


def test_show_key_items(host1_file: Path, cli: None, capsys: pytest.CaptureFixture[str]) -> None:
    out = _show(host1_file, capsys)
    assert not ANSI.search(out)  # piped: no escape codes
    for item in (
        "host     host1", "origin   from-dir",
        "h0", "10.77.0.9/24 (secondary)", "fd77::1/64", "br0",
        "IPv4 table main (254)", "IPv4 table 100: 2 routes", "10.50.0.0/16", "IPv4 table 1000",
        "IPv4 table local (255)", "IPv6 table 100: 1 routes", "2001:db8:100::/48",
        "1100: from all fwmark 0x10/0xff lookup 200", "1200: not from all to 10.0.0.0/8 lookup 100",
        "1000: from fd77::/64 lookup 100",
        "10.77.0.3", "PERMANENT",
        "10.77.0.1:2222", "[::]:8080", "python3 (pid", "[::1]:5354",
        "Conntrack entries (5)", "1 tcp",
        "ipv4 nft: ", "table filter: ", "FORWARD (policy DROP)", "MYCHAIN (user chain): 1 rules",
        "ipv6 nft: 2 rules", "ipv4 legacy: 1 rules",
        "nftables: 6 tables (from nft.json)", "table inet filter2: 2 chains, 2 rules, 1 sets",
        "table ip filter: 4 chains, 8 rules, 0 sets [iptables-nft, see above]",
        "input (filter input, prio 10, policy accept)",
        "net.ipv4.ip_forward", "net.ipv4.conf.h1.rp_filter            2",
        "net.ipv4.conf.h1.route_localnet       1", "net.netfilter.nf_conntrack_tcp_loose",
        "iptables-v6-legacy: missing: file not found: ip6tables-legacy-save.txt",
    ):
        assert item in out, item


def test_show_sosreport_snapshot(sos_file: Path, cli: None,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = _show(sos_file, capsys)
    assert "origin   sosreport" in out
    assert "no iptables dumps in this snapshot" in out
    assert "nftables: 6 tables (from sos_commands/firewall_tables/nft_list_ruleset)" in out
    assert "input (filter input, prio filter + 10, policy accept)" in out
    assert "iptables-v4-nft: missing: file not found: iptables-save" in out
    assert "224.0.0.22" in out and "NOARP" in out


def test_no_color_on_a_terminal(host1_file: Path) -> None:
    from journey.snapshot.fileio import load_snapshot

    snap = load_snapshot(host1_file)
    buf = io.StringIO()
    print_show(snap, Console(file=buf, force_terminal=True, no_color=True, width=120))
    assert not re.search(r"\x1b\[[0-9;]*3[0-9]m", buf.getvalue())  # no foreground colours
    buf = io.StringIO()
    print_show(snap, Console(file=buf, force_terminal=True, color_system="standard", width=120))
    assert re.search(r"\x1b\[[0-9;]*3[0-9]m", buf.getvalue())  # colour when allowed


def test_show_bad_snapshot(tmp_path: Path, cli: None, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "journey.snapshot", "version": 9, "snapshot": {}}')
    assert journey.cli.main(["show", str(bad)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (f"journey show: {bad}: version: written by a newer journey: version 9, "
                   "this journey reads 1\n")
    assert journey.cli.main(["show", str(tmp_path / "missing.json")]) == 2
    assert capsys.readouterr().err == f"journey show: {tmp_path / 'missing.json'}: no such file\n"
