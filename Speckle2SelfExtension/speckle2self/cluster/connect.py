"""Joining a Ray cluster, or starting one on this machine, with a bounded wait and one-line errors.

Ray's own connect waits for an unreachable head node for minutes and then aborts the process, so
an address is first probed here: a TCP connection and an HTTP/2 greeting (Ray's head speaks gRPC),
each within CONNECT_TIMEOUT_S.
"""
from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass

from .errors import INSTALL_HINT, ClusterError

CONNECT_TIMEOUT_S = 5.0
LOCAL = "local"
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  # + empty SETTINGS
_SETTINGS_FRAME = 4


@dataclass
class Session:
    """A connection this run opened (closed at the end) or found open (left as it was)."""

    ray: object
    owned: bool

    def close(self) -> None:
        if self.owned:
            self.ray.shutdown()


def import_ray():
    """The ray module, or a ClusterError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ClusterError(f"--ray needs Ray, which is not installed; install it with: {INSTALL_HINT}") from None
    return ray


def connect(address: str | None, init_options: dict | None = None) -> Session:
    """Use the Ray connection this process already has, else join `address` (HOST:PORT or "auto")
    or start a local instance (None or "local": this machine's cores, bound to loopback)."""
    local = address in (None, LOCAL)
    if local:  # a private instance needs no network interface; must be set before ray is imported
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray = import_ray()
    if ray.is_initialized():
        return Session(ray, owned=False)
    target = None if local else _reachable(_resolve(ray, address))
    options = dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    options.update(init_options or {})
    try:
        ray.init(address=target, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = "start a local Ray instance" if local else f"join the Ray cluster at {address}"
        raise ClusterError(f"cannot {where}: {_first_line(exc)}") from None
    return Session(ray, owned=True)


def _resolve(ray, address: str) -> str:
    """HOST:PORT of the head node: as given, or for "auto" the one RAY_ADDRESS or `ray start` names."""
    if address != "auto":
        return address
    found = os.environ.get("RAY_ADDRESS")
    if not found:
        try:
            from ray._private.services import canonicalize_bootstrap_address
            found = canonicalize_bootstrap_address("auto")
        except Exception:  # noqa: BLE001  (a private helper: without it, ray.init finds the cluster)
            return "auto"
    if not found:
        raise ClusterError("--ray auto found no running Ray cluster on this machine; start one with "
                           "`ray start --head`, or give its address as --ray HOST:PORT")
    return found


def _reachable(address: str) -> str:
    """`address` if a Ray head node answers there within CONNECT_TIMEOUT_S, else a ClusterError."""
    if address == "auto":
        return address
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"--ray expects HOST:PORT (the head node's address, e.g. 10.0.0.1:6379) or auto, "
                           f"not {address!r}")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S) as conn:
            conn.settimeout(CONNECT_TIMEOUT_S)
            conn.sendall(_HTTP2_PREFACE)
            greeting = conn.recv(9)
    except OSError as exc:
        raise ClusterError(f"no Ray cluster at {address}: {_why(exc)}; start one with `ray start --head` "
                           "or check the address") from None
    if len(greeting) < 9 or greeting[3] != _SETTINGS_FRAME:
        raise ClusterError(f"{address} answers, but it is not a Ray cluster's head node (no gRPC); "
                           "check the address and port (`ray start --head` prints them)")
    return address


def _why(exc: OSError) -> str:
    if isinstance(exc, socket.timeout):
        return f"no answer within {CONNECT_TIMEOUT_S:g} s"
    return exc.strerror or type(exc).__name__


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
