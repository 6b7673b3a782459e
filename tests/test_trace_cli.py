"""``journey trace``: exit codes, --packets files, --reply, the three formats, golden files.

Golden files live in tests/golden/; regenerate them with ``JOURNEY_UPDATE_GOLDEN=1 pytest
tests/test_trace_cli.py`` and review the diff.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest
from test_simulate import build_snap

from journey.commands import trace_cmd
from journey.snapshot.fileio import save_snapshot

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("JOURNEY_UPDATE_GOLDEN") == "1"


@pytest.fixture(scope="module")
def snapfile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("snap") / "router1.json"
    save_snapshot(build_snap(), path)
    return path


def cli(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="journey trace")
    trace_cmd.add_arguments(parser)
    args = parser.parse_args(list(argv))
    code = trace_cmd.run(args)
    out, err = capsys.readouterr()
    return code, out, err


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE or not path.exists():
        if not UPDATE:
            pytest.fail(f"golden file {path} missing: run with JOURNEY_UPDATE_GOLDEN=1")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert text == path.read_text(encoding="utf-8"), (
        f"output differs from {path}; regenerate with JOURNEY_UPDATE_GOLDEN=1 and review")


GOLDEN_CASES = {
    "ssh-syn": ["in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:22 flags S"],
    "dnat-forward": ["in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:8080 flags S"],
    "input-drop": ["in eth0 tcp 198.51.100.7:4000 > 192.0.2.10:23"],
    "local-dns": ["local udp > 93.184.216.34:53"],
    "ttl-exceeded": ["in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:8080 ttl 1"],
}


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_golden(case: str, fmt: str, snapfile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(str(snapfile), *GOLDEN_CASES[case], "--format", fmt, "--color", "never",
                         capsys=capsys)
    assert code == 0, err
    golden(f"{case}.{'txt' if fmt == 'text' else 'json'}", out)


def test_json_contract(snapfile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(str(snapfile), "in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:22 flags S",
                       "--format", "json", capsys=capsys)
    assert code == 0
    doc = json.loads(out)
    assert doc["format"] == "journey.trace" and doc["version"] == 1
    assert doc["snapshot"]["hostname"] == "router1"
    (j,) = doc["journeys"]
    assert j["packet"]["spec"].startswith("in eth0 tcp")
    assert j["packet"]["dport"] == 22
    stage = j["stages"][0]
    for key in ("name", "kind", "hook", "table", "family", "priority", "result", "changes",
                "rules", "notes", "uncertain", "summary", "decision", "functions", "config"):
        assert key in stage
    v = j["verdict"]
    assert v["disposition"] == "delivered" and v["code"] == "delivered"
    assert v["socket"] == {"proto": "tcp", "addr": "0.0.0.0", "port": 22, "process": "sshd",
                           "pid": 101}
    assert v["replies"][0]["kind"] == "syn-ack"
    assert set(v["packet"]) == {"src", "dst", "sport", "dport", "ttl", "mark"}
    assert "rules_hit" in j and "conntrack" in j


def test_markdown(snapfile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(str(snapfile), "in eth0 tcp 198.51.100.7:4000 > 192.0.2.10:23",
                       "--format", "markdown", capsys=capsys)
    assert code == 0
    assert out.startswith("# journey trace")
    assert "### Verdict" in out and "filter-drop" in out


def test_packets_file_shares_flows(snapfile: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    pk = tmp_path / "flow.txt"
    pk.write_text("# a DNATed connection\n"
                  "in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:8080 flags S\n\n"
                  "in eth1 tcp 10.0.0.5:80 > 198.51.100.7:40000 flags SA  # the answer\n"
                  "in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:8080 flags A\n")
    code, out, _ = cli(str(snapfile), "--packets", str(pk), "--format", "json", capsys=capsys)
    assert code == 0
    js = json.loads(out)["journeys"]
    assert len(js) == 3
    assert js[2]["conntrack"]["state"] == "ESTABLISHED"
    assert js[1]["verdict"]["packet"]["src"] == "192.0.2.10"


def test_reply_option(snapfile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(str(snapfile), "in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:22 flags S",
                       "--reply", "--format", "json", capsys=capsys)
    assert code == 0
    js = json.loads(out)["journeys"]
    assert len(js) == 2
    assert js[1]["packet"]["local"] is True and js[1]["packet"]["tcp_flags"] == "SA"


def test_exit_0_whatever_the_verdict(snapfile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(str(snapfile), "in eth9 tcp 1.2.3.4 > 5.6.7.8:80", capsys=capsys)
    assert code == 0 and "no-interface" in out


@pytest.mark.parametrize(("argv", "needle"), [
    (["in eth0 tcp 1.2.3.4 > 5.6.7.8:80 flgs S"], "column 34: unknown option 'flgs'"),
    ([], "no packet to trace"),
])
def test_bad_spec_exit_2(argv: list[str], needle: str, snapfile: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(str(snapfile), *argv, capsys=capsys)
    assert code == 2 and out == ""
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_bad_packets_file_names_line(snapfile: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    pk = tmp_path / "bad.txt"
    pk.write_text("in eth0 tcp 1.2.3.4 > 5.6.7.8:80\n# ok\nin eth0 tcp 1.2.3.4 5.6.7.8:80\n")
    code, _, err = cli(str(snapfile), "--packets", str(pk), capsys=capsys)
    assert code == 2
    assert f"{pk}:3:" in err and "expected '>'" in err


def test_missing_snapshot_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(str(tmp_path / "nope.json"), "local udp > 10.1.2.3:53", capsys=capsys)
    assert code == 2 and err.startswith("journey trace: ") and err.count("\n") == 1
