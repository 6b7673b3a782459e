"""Per-stage texts and kernel functions, and the stable verdict codes, as tables.

The engine (``simulate.py``) looks stages up here by key instead of spelling texts inline, so
the wording of every stage lives in one place, and ``VERDICT_CODES`` documents the closed set of
verdict codes (README / docs/trace-json.md are generated from it by hand).

Pure data: no I/O, no rich, no textual.
"""

from __future__ import annotations

from dataclasses import dataclass

from journey.model.family import Family


@dataclass(frozen=True, slots=True)
class StageText:
    """A stage's name, what the kernel does there, and its kernel functions (v4, v6)."""

    name: str
    summary: str
    v4: tuple[str, ...]
    v6: tuple[str, ...]

    def functions(self, family: Family) -> tuple[str, ...]:
        return self.v4 if family is Family.IPV4 else self.v6


STAGES: dict[str, StageText] = {s.name: s for s in (
    StageText(
        "NIC receive",
        "The frame arrives on an interface: the driver hands it to the stack, which checks the "
        "link, strips a VLAN tag (handing the frame to the VLAN interface) and classifies the "
        "destination MAC (ours, broadcast, multicast or another host's).",
        ("__netif_receive_skb_core", "eth_type_trans"),
        ("__netif_receive_skb_core", "eth_type_trans"),
    ),
    StageText(
        "XDP",
        "An XDP program runs in the driver before the kernel allocates its packet buffer; it can "
        "pass, drop, redirect or bounce the frame.",
        ("netif_receive_generic_xdp", "bpf_prog_run_xdp"),
        ("netif_receive_generic_xdp", "bpf_prog_run_xdp"),
    ),
    StageText(
        "tc ingress",
        "Traffic control's ingress hook (clsact / ingress qdisc) runs its filters and actions "
        "(BPF, police, mirred, ...) before the IP layer.",
        ("sch_handle_ingress", "tcf_classify"),
        ("sch_handle_ingress", "tcf_classify"),
    ),
    StageText(
        "IP header checks",
        "The IP layer validates the header: version, header length, checksum and total length; "
        "a frame addressed to another host's MAC is dropped here.",
        ("ip_rcv", "ip_rcv_core"),
        ("ipv6_rcv", "ip6_rcv_core"),
    ),
    StageText(
        "conntrack",
        "Connection tracking looks the packet up by its tuple: part of a known connection "
        "(ESTABLISHED / RELATED, and in which direction) or the first packet of a NEW one.",
        ("nf_conntrack_in", "resolve_normal_ct"),
        ("nf_conntrack_in", "resolve_normal_ct"),
    ),
    StageText(
        "defragmentation",
        "A fragment waits in a reassembly queue until every fragment of its datagram has "
        "arrived; only the whole datagram goes on. With connection tracking in use, netfilter "
        "reassembles first (PREROUTING / OUTPUT, priority -400, before every table); otherwise "
        "IPv4 reassembles before the INPUT hook and IPv6 after it, and forwarded fragments pass "
        "as they are.",
        ("ipv4_conntrack_defrag", "ip_defrag"),
        ("ipv6_defrag", "nf_ct_frag6_gather"),
    ),
    StageText(
        "reassembly",
        "A fragment for this host waits in the IP reassembly queue until its datagram is whole.",
        ("ip_local_deliver", "ip_defrag"),
        ("ipv6_frag_rcv", "ip6_frag_queue"),
    ),
    StageText(
        "input routing",
        "The routing decision for an arriving packet: policy rules in priority order, then the "
        "longest matching route in the table they point at; the local table decides whether "
        "the packet is for this host. The source is validated against the reverse route "
        "(rp_filter) and martian addresses are refused.",
        ("ip_rcv_finish", "ip_route_input_noref", "ip_route_input_slow", "fib_lookup",
         "fib_validate_source"),
        ("ip6_rcv_finish", "ip6_route_input", "fib6_rule_lookup"),
    ),
    StageText(
        "forward checks",
        "Before the FORWARD hook the kernel checks that forwarding is enabled, that the TTL / hop "
        "limit allows one more hop, and that the packet fits the outgoing MTU; then it "
        "decrements the TTL.",
        ("ip_forward", "ip_decrease_ttl"),
        ("ip6_forward",),
    ),
    StageText(
        "local delivery",
        "The packet is for this host: IP reassembles fragments and hands the payload to the "
        "transport protocol registered for its protocol number.",
        ("ip_local_deliver", "ip_local_deliver_finish", "ip_protocol_deliver_rcu"),
        ("ip6_input", "ip6_input_finish", "ip6_protocol_deliver_rcu"),
    ),
    StageText(
        "socket lookup",
        "The transport protocol finds the receiving socket: an established connection by its "
        "4-tuple first, then a listening / bound socket (exact address before wildcard, "
        "bound device respected).",
        ("tcp_v4_rcv", "__inet_lookup_skb"),
        ("tcp_v6_rcv", "__inet6_lookup_skb"),
    ),
    StageText(
        "sending socket",
        "A local process writes to a socket; the transport builds the packet and hands it to IP.",
        ("ip_queue_xmit", "__ip_local_out"),
        ("inet6_csk_xmit", "ip6_xmit", "__ip6_local_out"),
    ),
    StageText(
        "output routing",
        "The routing decision for a locally generated packet: policy rules (with the socket's "
        "mark, uid, output device), the route, the next hop and, when the socket did not bind "
        "one, the source address.",
        ("ip_route_output_key", "ip_route_output_key_hash", "fib_lookup", "inet_select_addr"),
        ("ip6_route_output", "fib6_rule_lookup", "ipv6_dev_get_saddr"),
    ),
    StageText(
        "reroute",
        "A mangle or nat OUTPUT rule changed the packet's mark, destination or TOS: the kernel "
        "looks the route up again, keeping the source address the first lookup chose.",
        ("ip_route_me_harder",),
        ("ip6_route_me_harder",),
    ),
    StageText(
        "neighbour",
        "The next hop's link-layer address comes from the neighbour table (ARP / NDP); a "
        "missing entry is resolved by sending a request first.",
        ("ip_finish_output2", "neigh_output", "neigh_resolve_output"),
        ("ip6_finish_output2", "neigh_output", "neigh_resolve_output"),
    ),
    StageText(
        "egress",
        "The packet is queued on the outgoing interface's qdisc (tc egress filters run here) "
        "and handed to the driver.",
        ("dev_queue_xmit", "__dev_queue_xmit", "sch_direct_xmit"),
        ("dev_queue_xmit", "__dev_queue_xmit", "sch_direct_xmit"),
    ),
    StageText(
        "loopback",
        "The destination is this host: the packet leaves through the loopback device and "
        "re-enters the stack as a received packet (PREROUTING, then INPUT); the route chosen "
        "at output is kept.",
        ("ip_finish_output2", "loopback_xmit", "netif_rx"),
        ("ip6_finish_output2", "loopback_xmit", "netif_rx"),
    ),
)}


@dataclass(frozen=True, slots=True)
class CodeInfo:
    """A verdict code: what it means and the usual fix."""

    disposition: str
    meaning: str


VERDICT_CODES: dict[str, CodeInfo] = {
    "delivered": CodeInfo("delivered", "handed to a local socket / the kernel's own handler"),
    "forwarded": CodeInfo("forwarded", "routed through this host and transmitted"),
    "sent": CodeInfo("sent", "a locally generated packet transmitted on an interface"),
    "filter-drop": CodeInfo("dropped", "a netfilter rule or chain policy dropped it"),
    "nat-clash": CodeInfo("dropped", "NAT found no free tuple: the new conntrack entry "
                                     "clashes with another flow's at confirm"),
    "reject": CodeInfo("rejected", "a REJECT rule dropped it and answered the sender"),
    "no-route": CodeInfo("dropped", "no route matches the destination"),
    "blackhole": CodeInfo("dropped", "a blackhole route discards it silently"),
    "unreachable-route": CodeInfo("dropped", "an unreachable route: ICMP host unreachable"),
    "prohibit-route": CodeInfo("dropped", "a prohibit route: ICMP administratively prohibited"),
    "rp-filter": CodeInfo("dropped", "reverse-path filtering: the source is not reachable back "
                                     "through the arrival interface"),
    "martian-source": CodeInfo("dropped", "the source address is impossible on the wire"),
    "martian-destination": CodeInfo("dropped", "the destination address is impossible"),
    "forwarding-disabled": CodeInfo("dropped", "not for this host and forwarding is off"),
    "ttl-exceeded": CodeInfo("dropped", "TTL / hop limit would reach 0: ICMP time exceeded"),
    "frag-needed": CodeInfo("dropped", "too big for the outgoing MTU and may not be "
                                       "fragmented: ICMP fragmentation needed / packet too big"),
    "no-socket": CodeInfo("rejected", "no socket listens on the port: TCP RST / ICMP port "
                                      "unreachable"),
    "no-connection": CodeInfo("rejected", "a non-SYN TCP segment reached a listening socket "
                                          "with no matching connection: RST"),
    "challenge-ack": CodeInfo("dropped", "a SYN for an established connection: the kernel "
                                         "answers a challenge ACK and discards it"),
    "reassembly": CodeInfo("dropped", "a lone fragment is held for reassembly; the other "
                           "fragments are not in this trace"),
    "beyond-scope": CodeInfo("dropped", "an IPv6 link-local source would be forwarded to "
                             "another link: ICMPv6 beyond scope"),
    "icmp-ignored": CodeInfo("dropped", "echo requests are ignored by a sysctl"),
    "not-for-us": CodeInfo("dropped", "the frame's destination MAC is another host's"),
    "link-down": CodeInfo("dropped", "the interface is down"),
    "no-interface": CodeInfo("dropped", "the interface (or VLAN) does not exist here"),
    "neighbour-failed": CodeInfo("dropped", "the next hop's ARP / NDP resolution failed"),
    "bad-header": CodeInfo("dropped", "an invalid IP header"),
    "queued": CodeInfo("uncertain", "handed to a userspace queue (NFQUEUE): its verdict is "
                                    "not known"),
    "uncertain": CodeInfo("uncertain", "the engine cannot tell what happens next"),
}
