"""Bridge-family nftables chains against the kernel.

journey does not evaluate bridge-family chains, so a frame that arrives on a bridge port while
such chains exist must make the journey uncertain. This checks the premise with the kernel: a
bridge-family chain does see (and can drop) a frame arriving on a bridge port that is addressed
to the bridge's own IP, before IP handles it; and the engine, on a snapshot collected by
journey from that namespace, marks the journey uncertain instead of claiming a verdict.
"""

from __future__ import annotations

import re
import time

import pytest
from kernelutil import Netns, require_kernel, veth

from journey.engine.simulate import simulate
from journey.packets.spec import parse_spec
from journey.snapshot.collect import collect

pytestmark = pytest.mark.kernel

BRIDGE_RULESET = """
table bridge filt {
    chain pre {
        type filter hook prerouting priority 0; policy accept;
        ether type ip ip daddr 10.7.0.1 icmp type echo-request counter drop
    }
}
"""


def _counter(ns: Netns) -> int:
    out = ns.exec(["nft", "list", "table", "bridge", "filt"]).stdout
    m = re.search(r"counter packets (\d+)", out)
    assert m, out
    return int(m.group(1))


def test_bridge_chain_sees_a_bridged_frame_and_the_engine_says_uncertain() -> None:
    require_kernel("nft", "ping")
    host = Netns("brk")
    peer = Netns("brk")
    try:
        host.ip("link add br0 type bridge")
        host.ip("addr add 10.7.0.1/24 dev br0")
        host.ip("link set br0 up")
        veth(host, "p0", peer, "n0")
        host.ip("link set p0 master br0")
        peer.ip("addr add 10.7.0.2/24 dev n0")
        host.exec(["nft", "-f", "-"], input=BRIDGE_RULESET)
        time.sleep(0.3)  # bridge port forwarding state
        snap = collect(netns=host.name)

        before = _counter(host)
        res = peer.exec(["ping", "-c", "1", "-W", "1", "10.7.0.1"], check=False)
        # the kernel: the bridge chain saw the frame and dropped it, so no echo reply
        assert _counter(host) == before + 1
        assert res.returncode != 0

        mac = host.exec(["cat", "/sys/class/net/br0/address"]).stdout.strip()
        spec = f"in p0 icmp 10.7.0.2 > 10.7.0.1 type echo-request mac {mac}"
        j = simulate(snap, parse_spec(spec), spec=spec)
        nic = j.stages[0]
        assert nic.uncertain and any("bridge filt pre" in n for n in nic.notes), nic.notes
        assert j.uncertain
    finally:
        host.delete()
        peer.delete()
