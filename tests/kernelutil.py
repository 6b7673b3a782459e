"""Helpers for kernel-backed tests: throwaway network namespaces, veth links, commands inside them.

Every namespace is named ``jt<prefix>-<random>``, created only through ``Netns``/``netns()``
and deleted in a ``finally``. Nothing here touches the root namespace's firewall, routes,
interfaces or sysctls: every command runs with ``ip netns exec``. veth pairs are created inside
a namespace and one end is moved to the peer namespace.

``require_kernel()`` skips when not root / no netns support, and fails instead when ``CI`` is
set, so CI never silently skips the kernel suite.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Sequence

import pytest

# sysctls a new namespace inherits from the root namespace: reset them to kernel defaults
RESET_SYSCTLS = {
    "net.ipv4.conf.all.rp_filter": "0",
    "net.ipv4.conf.default.rp_filter": "0",
    "net.ipv4.conf.all.accept_local": "0",
    "net.ipv4.conf.default.accept_local": "0",
    "net.ipv4.conf.all.route_localnet": "0",
    "net.ipv4.conf.default.route_localnet": "0",
    "net.ipv4.conf.all.forwarding": "0",
    "net.ipv4.conf.default.forwarding": "0",
    "net.ipv4.ip_forward": "0",
    "net.ipv6.conf.all.forwarding": "0",
    "net.ipv6.conf.default.forwarding": "0",
    "net.ipv6.conf.all.accept_dad": "0",
    "net.ipv6.conf.default.accept_dad": "0",
    "net.ipv6.conf.all.router_solicitations": "0",
    "net.ipv6.conf.default.router_solicitations": "0",
    "net.ipv6.conf.all.accept_ra": "0",
    "net.ipv6.conf.default.accept_ra": "0",
    # MLD reports after a group join (link up, new addresses) are repeated for up to ~1 s by
    # default and would land in OUTPUT counters while a test sends: make them finish at once
    "net.ipv6.conf.all.mldv1_unsolicited_report_interval": "10",
    "net.ipv6.conf.default.mldv1_unsolicited_report_interval": "10",
    "net.ipv6.conf.all.mldv2_unsolicited_report_interval": "10",
    "net.ipv6.conf.default.mldv2_unsolicited_report_interval": "10",
    "net.ipv4.icmp_ratelimit": "0",
    "net.ipv6.icmp.ratelimit": "0",
}


def kernel_available() -> tuple[bool, str]:
    if os.geteuid() != 0:
        return False, "needs root"
    if shutil.which("ip") is None:
        return False, "iproute2 (ip) not installed"
    if not os.path.exists("/proc/self/ns/net"):
        return False, "no network namespace support"
    return True, ""


def require_kernel(*tools: str) -> None:
    """Skip (or fail under CI) when kernel tests cannot run here."""
    ok, why = kernel_available()
    if ok:
        missing = [t for t in tools if shutil.which(t) is None]
        if missing:
            ok, why = False, f"missing tools: {', '.join(missing)}"
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"kernel test cannot run in CI: {why}")
        pytest.skip(why)


def run(cmd: Sequence[str] | str, *, check: bool = True, input: str | None = None,
        timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run a command (list, or a string split on whitespace), capture text output."""
    argv = cmd.split() if isinstance(cmd, str) else list(cmd)
    res = subprocess.run(argv, capture_output=True, text=True, input=input, timeout=timeout)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({res.returncode}): {res.stderr.strip()}")
    return res


class Netns:
    """A network namespace owned by a test. Use as a context manager, or call ``delete()``."""

    def __init__(self, prefix: str, *, reset_sysctls: bool = True) -> None:
        self.name = f"jt{prefix}-{secrets.token_hex(3)}"
        run(["ip", "netns", "add", self.name])
        try:
            self.ip("link set lo up")
            if reset_sysctls:
                self.sysctl(RESET_SYSCTLS)
        except Exception:
            self.delete()
            raise

    # -- commands --------------------------------------------------------------------------
    def exec(self, cmd: Sequence[str] | str, *, check: bool = True, input: str | None = None,
             timeout: float = 30) -> subprocess.CompletedProcess[str]:
        argv = cmd.split() if isinstance(cmd, str) else list(cmd)
        return run(["ip", "netns", "exec", self.name, *argv], check=check, input=input,
                   timeout=timeout)

    def sh(self, script: str, *, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run a shell script inside the namespace."""
        return run(["ip", "netns", "exec", self.name, "sh", "-ec", script], check=check,
                   timeout=timeout)

    def ip(self, args: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.exec(["ip", *args.split()], check=check)

    def popen(self, argv: Sequence[str], **kw: object) -> subprocess.Popen[str]:
        return subprocess.Popen(["ip", "netns", "exec", self.name, *argv], text=True, **kw)  # type: ignore[call-overload,no-any-return]

    def sysctl(self, values: dict[str, str]) -> None:
        script = "\n".join(
            f"[ -e /proc/sys/{k.replace('.', '/')} ] && echo {v} > /proc/sys/{k.replace('.', '/')} || true"
            for k, v in values.items()
        )
        self.sh(script)

    def restore(self, tool: str, text: str) -> None:
        """Load a ruleset: tool is iptables-restore, ip6tables-restore, nft -f -, ..."""
        self.exec([*tool.split()], input=text)

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "pids", self.name], capture_output=True)
        pids = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), 9)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)

    def __enter__(self) -> Netns:
        return self

    def __exit__(self, *exc: object) -> None:
        self.delete()


def veth(a: Netns, a_if: str, b: Netns, b_if: str, *, offloads_off: bool = True) -> None:
    """A veth pair between two namespaces: ``a_if`` in a, ``b_if`` in b, both up."""
    a.exec(["ip", "link", "add", a_if, "type", "veth", "peer", "name", b_if])
    a.exec(["ip", "link", "set", b_if, "netns", b.name])
    for ns, ifname in ((a, a_if), (b, b_if)):
        if offloads_off and shutil.which("ethtool"):
            ns.exec(["ethtool", "-K", ifname, "rx", "off", "tx", "off", "tso", "off", "gso", "off",
                     "gro", "off"], check=False)
        ns.exec(["ip", "link", "set", ifname, "up"])


@contextlib.contextmanager
def namespaces(prefix: str, count: int) -> Iterator[list[Netns]]:
    """``count`` namespaces sharing a prefix, all deleted on exit (even on failure)."""
    made: list[Netns] = []
    try:
        for _ in range(count):
            made.append(Netns(prefix))
        yield made
    finally:
        for ns in made:
            ns.delete()
