"""Which address the job's sockets bind to."""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct

from ..errors import ConfigError

__all__ = ["bind_address"]

_SIOCGIFADDR = 0x8915


def _interface_address(name: str) -> str:
    """The IPv4 address of network interface ``name`` (Linux ioctl, no resolver)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            packed = fcntl.ioctl(s.fileno(), _SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
        except OSError as exc:
            raise ConfigError(f"config key 'interface': no IPv4 address on interface {name!r} ({exc})") from None
    return socket.inet_ntoa(packed[20:24])


def bind_address(interface: str, single_host: bool) -> str:
    """The address to bind: loopback for ``auto`` on one host, else the named address or interface.

    A job spread over hosts must say which interface it uses (``interface``:
    an IPv4 address or an interface name such as ``eth0``); it never binds to
    every interface.
    """
    if interface == "auto":
        if single_host:
            return "127.0.0.1"
        raise ConfigError("config key 'interface' must name the network interface or address of each host "
                          "(e.g. \"eth0\") when the job runs on several hosts")
    try:
        addr = ipaddress.ip_address(interface)
    except ValueError:
        return _interface_address(interface)
    if addr.is_unspecified:
        raise ConfigError("config key 'interface': binding to every interface (0.0.0.0) is not allowed")
    return str(addr)
