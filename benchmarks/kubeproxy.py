"""Generator of kube-proxy-shaped ``iptables-save`` text (iptables mode), for benchmarks and tests.

The shape follows what kube-proxy (1.28+, iptables mode) writes with iptables-restore: in
``nat``, KUBE-SERVICES dispatches each ClusterIP (and LoadBalancer IP) to a KUBE-SVC-* chain
that masquerades off-cluster sources and picks an endpoint with ``-m statistic --mode random
--probability``; each KUBE-SEP-* chain marks hairpin traffic (KUBE-MARK-MASQ) and DNATs;
NodePort services go through KUBE-NODEPORTS -> KUBE-EXT-*; KUBE-POSTROUTING masquerades marked
packets with ``--set-xmark``. In ``filter``: KUBE-FIREWALL, KUBE-FORWARD, KUBE-PROXY-FIREWALL
(drops for LoadBalancer source ranges) and REJECT rules for services without endpoints.

Deterministic (chain names are hashes of the service name, like kube-proxy's). Importable:
``from benchmarks.kubeproxy import generate``. No dependency beyond the standard library.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress

MASQ_MARK = "0x4000/0x4000"
POD_CIDR = "10.244.0.0/16"


def _chain(prefix: str, *parts: str) -> str:
    """kube-proxy's chain names: prefix + first 16 base32 chars of sha256(parts)."""
    digest = hashlib.sha256("".join(parts).encode()).digest()
    return prefix + base64.b32encode(digest).decode()[:16]


def generate(services: int = 5000, endpoints_per_service: int = 3) -> str:
    """An iptables-save text for ``services`` TCP services with ``endpoints_per_service`` each.

    Every 3rd service is a NodePort, every 10th a LoadBalancer (with a firewall chain), and
    every 50th has no endpoints (REJECT in filter). 5000 x 3 gives about 60k rules.
    """
    cluster_net = ipaddress.IPv4Network("10.96.0.0/12")
    pod_base = int(ipaddress.IPv4Address("10.244.0.0"))
    lb_base = int(ipaddress.IPv4Address("203.0.113.0"))

    nat_chains: list[str] = []
    nat: list[str] = []
    svc_rules: list[str] = []
    nodeport_rules: list[str] = []
    flt_svc: list[str] = []
    flt_ext: list[str] = []
    flt_fw: list[str] = []

    for s in range(services):
        ns = f"ns{s % 97}"
        name = f"svc-{s}"
        port_name = "http"
        svc = f"{ns}/{name}:{port_name}"
        cip = cluster_net[1 + s]
        port = 80 + (s % 7)
        target_port = 8080 + (s % 5)
        svc_chain = _chain("KUBE-SVC-", svc, "tcp")
        ext_chain = _chain("KUBE-EXT-", svc, "tcp")
        fw_chain = _chain("KUBE-FW-", svc, "tcp")
        nodeport = 30000 + (s % 2768) if s % 3 == 0 else None
        lb_ip = ipaddress.IPv4Address(lb_base + (s // 10) % 250 + 1) if s % 10 == 0 else None
        n_ep = 0 if s % 50 == 49 else endpoints_per_service

        if n_ep == 0:
            flt_svc.append(f'-A KUBE-SERVICES -d {cip}/32 -p tcp -m comment --comment "{svc} has '
                           f'no endpoints" -m tcp --dport {port} -j REJECT --reject-with '
                           "icmp-port-unreachable")
            if nodeport is not None:
                flt_ext.append(f'-A KUBE-EXTERNAL-SERVICES -p tcp -m comment --comment "{svc} has '
                               f'no endpoints" -m addrtype --dst-type LOCAL -m tcp --dport '
                               f"{nodeport} -j REJECT --reject-with icmp-port-unreachable")
            continue

        nat_chains.append(svc_chain)
        svc_rules.append(f'-A KUBE-SERVICES -d {cip}/32 -p tcp -m comment --comment "{svc} '
                         f'cluster IP" -m tcp --dport {port} -j {svc_chain}')
        nat.append(f'-A {svc_chain} ! -s {POD_CIDR} -d {cip}/32 -p tcp -m comment --comment '
                   f'"{svc} cluster IP" -m tcp --dport {port} -j KUBE-MARK-MASQ')
        seps: list[tuple[str, str]] = []
        for e in range(n_ep):
            ep_ip = ipaddress.IPv4Address(pod_base + (s * endpoints_per_service + e) % 65000 + 2)
            ep = f"{ep_ip}:{target_port}"
            seps.append((_chain("KUBE-SEP-", svc, "tcp", ep), ep))
        for e, (sep, ep) in enumerate(seps):
            left = n_ep - e
            if left > 1:
                # the kernel keeps a 31-bit fraction: iptables-save prints 1/3 as 0.33333333349
                prob = f"{round(0x80000000 / left) / 0x80000000:.11f}"
                nat.append(f'-A {svc_chain} -m comment --comment "{svc} -> {ep}" -m statistic '
                           f"--mode random --probability {prob} -j {sep}")
            else:
                nat.append(f'-A {svc_chain} -m comment --comment "{svc} -> {ep}" -j {sep}')
        for sep, ep in seps:
            nat_chains.append(sep)
            ip = ep.split(":")[0]
            nat.append(f'-A {sep} -s {ip}/32 -m comment --comment "{svc}" -j KUBE-MARK-MASQ')
            nat.append(f'-A {sep} -p tcp -m comment --comment "{svc}" -m tcp -j DNAT '
                       f"--to-destination {ep}")

        if nodeport is not None or lb_ip is not None:
            nat_chains.append(ext_chain)
            nat.append(f'-A {ext_chain} -m comment --comment "masquerade traffic for {svc} '
                       'external destinations" -j KUBE-MARK-MASQ')
            nat.append(f"-A {ext_chain} -j {svc_chain}")
        if nodeport is not None:
            nodeport_rules.append(f'-A KUBE-NODEPORTS -p tcp -m comment --comment "{svc}" -m tcp '
                                  f"--dport {nodeport} -j {ext_chain}")
        if lb_ip is not None:
            nat_chains.append(fw_chain)
            svc_rules.append(f'-A KUBE-SERVICES -d {lb_ip}/32 -p tcp -m comment --comment "{svc} '
                             f'loadbalancer IP" -m tcp --dport {port} -j {fw_chain}')
            nat.append(f'-A {fw_chain} -s 198.51.100.0/24 -m comment --comment "{svc} '
                       f'loadbalancer IP" -j {ext_chain}')
            nat.append(f'-A {fw_chain} -m comment --comment "{svc} loadbalancer IP" -j '
                       "KUBE-MARK-DROP")
            flt_fw.append(f'-A KUBE-PROXY-FIREWALL -d {lb_ip}/32 -p tcp -m comment --comment '
                          f'"{svc} traffic not accepted by {fw_chain}" -m tcp --dport {port} '
                          "-j DROP")

    # iptables-save lists user chains sorted by name, and each chain's rules together
    nat_user = sorted({*nat_chains, "KUBE-KUBELET-CANARY", "KUBE-MARK-DROP", "KUBE-MARK-MASQ",
                       "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-PROXY-CANARY", "KUBE-SERVICES"})
    order = {c: k for k, c in enumerate(nat_user)}
    nat_rules = [
        "-A KUBE-MARK-DROP -j MARK --set-xmark 0x8000/0x8000",
        f"-A KUBE-MARK-MASQ -j MARK --set-xmark {MASQ_MARK}",
        *nodeport_rules,
        f"-A KUBE-POSTROUTING -m mark ! --mark {MASQ_MARK} -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
        "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" "
        "-j MASQUERADE --random-fully",
        *svc_rules,
        "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be "
        "the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS",
        *nat,
    ]
    out: list[str] = [
        "# Generated by iptables-save v1.8.9 (nf_tables) on Mon Nov 24 00:00:00 2026",
        "*filter",
        ":INPUT ACCEPT [0:0]",
        ":FORWARD ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":KUBE-EXTERNAL-SERVICES - [0:0]",
        ":KUBE-FIREWALL - [0:0]",
        ":KUBE-FORWARD - [0:0]",
        ":KUBE-KUBELET-CANARY - [0:0]",
        ":KUBE-NODEPORTS - [0:0]",
        ":KUBE-PROXY-CANARY - [0:0]",
        ":KUBE-PROXY-FIREWALL - [0:0]",
        ":KUBE-SERVICES - [0:0]",
        "-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer "
        "firewall\" -j KUBE-PROXY-FIREWALL",
        "-A INPUT -m comment --comment \"kubernetes health check service ports\" -j KUBE-NODEPORTS",
        "-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible "
        "service portals\" -j KUBE-EXTERNAL-SERVICES",
        "-A INPUT -j KUBE-FIREWALL",
        "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer "
        "firewall\" -j KUBE-PROXY-FIREWALL",
        "-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD",
        "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes service "
        "portals\" -j KUBE-SERVICES",
        "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-"
        "visible service portals\" -j KUBE-EXTERNAL-SERVICES",
        "-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer "
        "firewall\" -j KUBE-PROXY-FIREWALL",
        "-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" "
        "-j KUBE-SERVICES",
        "-A OUTPUT -j KUBE-FIREWALL",
        *flt_ext,
        "-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment \"block incoming "
        "localnet connections\" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
        "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark "
        f"{MASQ_MARK} -j ACCEPT",
        "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m "
        "conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        *flt_fw,
        *flt_svc,
        "COMMIT",
        "*nat",
        ":PREROUTING ACCEPT [0:0]",
        ":INPUT ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]",
        *(f":{c} - [0:0]" for c in nat_user),
        "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING",
        *sorted(nat_rules, key=lambda r: order[r.split(" ", 2)[1]]),  # by chain, stable
        "COMMIT",
        "",
    ]
    return "\n".join(out)


if __name__ == "__main__":  # pragma: no cover - manual use: python -m benchmarks.kubeproxy N
    import sys

    sys.stdout.write(generate(int(sys.argv[1]) if len(sys.argv) > 1 else 5000))
