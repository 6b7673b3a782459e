"""Address family and address type aliases shared by every model module. Pure; no I/O."""

from __future__ import annotations

import enum
import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Family(enum.StrEnum):
    """Address family."""

    IPV4 = "ipv4"
    IPV6 = "ipv6"

    @property
    def version(self) -> int:
        return 4 if self is Family.IPV4 else 6

    @classmethod
    def of(cls, addr: IPAddress | IPNetwork) -> Family:
        return cls.IPV4 if addr.version == 4 else cls.IPV6
