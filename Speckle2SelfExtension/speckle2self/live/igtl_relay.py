"""OpenIGTLink relay: IMAGE messages in from a server (PLUS, a scanner), denoised IMAGE messages out.

    speckle2self live --source HOST:PORT --serve PORT

The relay connects as a client to the source server and reconnects whenever it goes away. Each
IMAGE message goes to a LiveDenoiser (the newest frame wins, so the relay never falls behind the
probe); each result is served as an IMAGE message named `<device name><suffix>` with the input's
image-to-world matrix, coordinate system and timestamp to every client connected to the serve port
(3D Slicer's OpenIGTLinkIF, another PLUS). Other messages (transforms, strings) are forwarded
unchanged, so a client that connects only to the relay still gets the tracking data.

pyigtl (pure Python) packs and unpacks the messages; it is imported only when a relay starts. Its
own client does not notice a server that has gone away, its server serves one client at a time, and
its reader trusts every field a peer sends, so the sockets and the reader here are our own
(speckle2self.live.igtl_messages): a message that cannot be used is counted and dropped, one larger than
--max-message-mb is refused unread, and the status line says so. At most MAX_NAMES device names
are remembered, and at most MAX_CLIENTS clients are served at once (each has its own thread; one
more is closed as it connects, and the status line counts it).
"""
from __future__ import annotations

import ipaddress
import re
import select
import socket
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .igtl_messages import (DEFAULT_MAX_MESSAGE_MB, DEFAULT_STALL_S, CrcMismatch, MalformedMessage, StreamError,
                            decode_image, read_message)
from .denoiser import LiveDenoiser, LiveResult

Say = Callable[[str], None]
IGTL_NAME_BYTES = 20
"""OpenIGTLink headers (versions 1 and 2) hold device names of at most 20 bytes."""
POLL_S = 0.2
RETRY_S = 1.0
MAX_NAMES = 64
"""Device names remembered (and replayed to a new client): a scanner sends one or two, a PLUS
server a handful of images and transforms."""
MAX_CLIENTS = 16
"""Clients served at once, each on its own thread: Slicer, a recorder, another PLUS, with room."""
MAX_KEPT_BYTES = 256 << 20
"""Bytes of newest messages kept for the clients, all names together."""


@dataclass(frozen=True)
class ImageMeta:
    """What an output message keeps from its input message."""

    name: str
    matrix: np.ndarray
    coordinates: str
    timestamp: float


def parse_endpoint(text: str) -> tuple[str, int]:
    """'HOST:PORT' (or ':PORT' / 'PORT' for this machine) as (host, port); ValueError if either is not usable."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT with a port between 1 and 65535, not {text!r}")
    return parse_host(host) if host else "127.0.0.1", int(port)


def parse_port(text: str) -> int:
    """A port to serve on: 1 to 65535, or 0 for any free port; ValueError otherwise."""
    if not text.strip().isdigit() or not 0 <= int(text) < 65536:
        raise ValueError(f"expected a port from 1 to 65535 (0: any free port), not {text!r}")
    return int(text)


_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def parse_host(text: str) -> str:
    """An IP address (IPv6 with or without [brackets]) or a host name (RFC 1123); ValueError otherwise."""
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    labels = bare.rstrip(".").split(".")
    if not bare or len(bare) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise ValueError(f"expected an IP address or a host name, not {text!r}")
    return bare


class SourceConnection:
    """Keeps a client connection to the source server open and hands on what arrives (on its own thread).

    Whatever the source sends, the thread goes on: a message that cannot be used is counted and
    dropped (speckle2self.live.igtl_messages); one too large to read, or a body that stalls, closes the
    connection, says why, and reconnects after `retry_s`.
    """

    def __init__(self, host: str, port: int, on_image: Callable[[object], None],
                 on_other: Callable[[str, bytes], None], say: Say, *,
                 max_bytes: int = DEFAULT_MAX_MESSAGE_MB << 20, stall_s: float = DEFAULT_STALL_S,
                 retry_s: float = RETRY_S) -> None:
        self.host, self.port = host, port
        self.on_image, self.on_other, self.say = on_image, on_other, say
        self.max_bytes, self.stall_s, self.retry_s = max_bytes, stall_s, retry_s
        self.connected = threading.Event()
        self.counts = {"messages": 0, "dropped": 0, "crc": 0, "closed": 0}
        self.last_problem: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="speckle2self-igtl-source", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def status(self) -> str:
        """What was dropped or refused so far ('' while everything was usable)."""
        c = self.counts
        if not (c["dropped"] or c["closed"]):
            return ""
        return (f"source: {c['dropped']} message(s) dropped ({c['crc']} with a bad CRC), {c['closed']} "
                f"connection(s) closed; last: {self.last_problem}")

    def _run(self) -> None:
        waiting_said = False
        while not self._stop.is_set():
            try:
                sock = socket.create_connection((self.host, self.port), timeout=POLL_S)
            except OSError:
                if not waiting_said:
                    self.say(f"waiting for an OpenIGTLink server (PLUS, a scanner) at {self.host}:{self.port}…")
                    waiting_said = True
                self._stop.wait(self.retry_s)
                continue
            waiting_said = False
            self.say(f"connected to {self.host}:{self.port}; waiting for IMAGE messages")
            self.connected.set()
            try:
                self._receive(sock)
            except InterruptedError:
                return
            except StreamError as exc:
                self._closed(f"closing the connection to {self.host}:{self.port}: {exc}; reconnecting")
            except (ConnectionError, OSError) as exc:
                self.say(f"the source at {self.host}:{self.port} went away ({exc}); reconnecting")
                self._stop.wait(self.retry_s)  # a source that accepts and hangs up at once: no busy loop
            except Exception as exc:  # a bug here must not end the stream for good
                self._closed(f"closing the connection to {self.host}:{self.port} after an unexpected "
                             f"{type(exc).__name__}: {exc}; reconnecting")
            finally:
                self.connected.clear()
                sock.close()

    def _closed(self, line: str) -> None:
        self.counts["closed"] += 1
        self.last_problem = line
        self.say(line)
        self._stop.wait(self.retry_s)

    def _receive(self, sock: socket.socket) -> None:
        while True:
            try:
                header, body = read_message(sock, self._stop, self.max_bytes, self.stall_s)
                self.counts["messages"] += 1
                self._hand_on(header, body)
            except MalformedMessage as exc:
                self._drop(exc)

    def _hand_on(self, header, body: bytes) -> None:
        if header.type != "IMAGE":
            self.on_other(header.device, header.raw + body)
            return
        message = decode_image(header, body)
        try:
            self.on_image(message)
        except (ValueError, TypeError, ArithmeticError, LookupError) as exc:  # decoded, but no usable frame
            raise MalformedMessage(f"an IMAGE that is not a usable frame ({type(exc).__name__}: {exc})") from None

    def _drop(self, exc: MalformedMessage) -> None:
        self.counts["dropped"] += 1
        self.counts["crc"] += isinstance(exc, CrcMismatch)
        self.last_problem = f"dropped {exc}"
        if self.counts["dropped"] == 1 or self.counts["dropped"] % 100 == 0:
            self.say(f"dropped {exc} ({self.counts['dropped']} so far); the stream goes on")


class MessageServer:
    """Serves the newest message of each device name to every connected client.

    A client that cannot keep up skips to the newest message; one that stops reading for
    SEND_TIMEOUT_S seconds is disconnected. Whatever clients send is read and ignored. At most
    `max_names` device names and `max_bytes` of messages are kept (the least recently updated go
    first), so a source that sends ever new names cannot grow the relay or what a new client is sent.
    At most `max_clients` are served at once: a client beyond them is closed as it connects (and
    counted in `refused`), so connections that are opened and left idle cannot exhaust threads.
    """

    SEND_TIMEOUT_S = 5.0

    def __init__(self, port: int, host: str = "127.0.0.1", *, max_names: int = MAX_NAMES,
                 max_bytes: int = MAX_KEPT_BYTES, max_clients: int = MAX_CLIENTS) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.create_server((host, port), family=family, reuse_port=False)
        self._listener.settimeout(POLL_S)
        self.host, self.port = host, self._listener.getsockname()[1]
        self.max_names, self.max_bytes, self.max_clients = max_names, max_bytes, max_clients
        self.refused = 0
        self._latest: OrderedDict[str, tuple[int, bytes]] = OrderedDict()
        self._kept_bytes = 0
        self._sequence = 0
        self._changed = threading.Condition()
        self._closed = False
        self._clients: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._accept_loop, name="speckle2self-igtl-server", daemon=True)
        self._accept.start()

    @property
    def clients(self) -> int:
        return sum(t.is_alive() for t in self._clients)

    @property
    def names(self) -> list[str]:
        """The device names kept, least recently updated first."""
        with self._changed:
            return list(self._latest)

    def publish(self, name: str, data: bytes) -> None:
        with self._changed:
            self._sequence += 1
            old = self._latest.pop(name, None)
            self._kept_bytes += len(data) - (len(old[1]) if old else 0)
            self._latest[name] = (self._sequence, data)
            while len(self._latest) > 1 and (len(self._latest) > self.max_names or self._kept_bytes > self.max_bytes):
                self._kept_bytes -= len(self._latest.popitem(last=False)[1][1])
            self._changed.notify_all()

    def close(self, timeout: float = 5.0) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._accept.join(timeout)
        self._listener.close()
        for thread in self._clients:
            thread.join(timeout)

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                conn, _address = self._listener.accept()
            except (socket.timeout, OSError):
                continue
            self._clients = [t for t in self._clients if t.is_alive()]
            if len(self._clients) >= self.max_clients:
                self.refused += 1
                conn.close()
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), name="speckle2self-igtl-client", daemon=True)
            self._clients.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(self.SEND_TIMEOUT_S)
        sent: dict[str, int] = {}
        try:
            while not self._closed:
                for name, sequence, data in self._wait_for_news(sent):
                    conn.sendall(data)
                    sent[name] = sequence
                if not self._drain(conn):
                    return
        except OSError:
            return
        finally:
            conn.close()

    def _wait_for_news(self, sent: dict[str, int]) -> list[tuple[str, int, bytes]]:
        def news() -> list[tuple[str, int, bytes]]:
            return [(n, s, d) for n, (s, d) in self._latest.items() if sent.get(n) != s]
        with self._changed:
            for gone in [n for n in sent if n not in self._latest]:
                del sent[gone]
            self._changed.wait_for(lambda: self._closed or bool(news()), POLL_S)
            return [] if self._closed else news()

    @staticmethod
    def _drain(conn: socket.socket) -> bool:
        """Read and ignore what the client sent; False once it has closed the connection."""
        while select.select([conn], [], [], 0)[0]:
            if not conn.recv(1 << 16):
                return False
        return True


class Relay:
    """Source connection -> LiveDenoiser -> message server; see the module docstring."""

    def __init__(self, source: tuple[str, int], serve_port: int, *, model=None, device: str = "auto",
                 precision: str = "auto", suffix: str = "Denoised", bind: str = "127.0.0.1", say: Say = print,
                 max_message_mb: float = DEFAULT_MAX_MESSAGE_MB, stall_s: float = DEFAULT_STALL_S) -> None:
        import pyigtl  # noqa: F401  (fail here, with a clear message, if it is missing)
        self.suffix, self.say = suffix, say
        self._named: OrderedDict[str, None] = OrderedDict()
        self.server = MessageServer(serve_port, bind)
        try:
            self.live = LiveDenoiser(model, device, precision=precision, on_result=self._publish)
        except BaseException:
            self.server.close()
            raise
        self.source = SourceConnection(source[0], source[1], self._receive, self.server.publish, say,
                                       max_bytes=int(max_message_mb * 2 ** 20), stall_s=stall_s)

    def start(self) -> "Relay":
        self.say(f"serving denoised images on {self.server.host}:{self.server.port} "
                 f"(device {self.live.device}); each is named after its input plus '{self.suffix}'")
        self.source.start()
        return self

    def stop(self) -> None:
        self.source.stop()
        self.live.stop()
        self.server.close()

    def __enter__(self) -> "Relay":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def status(self) -> str:
        """Frame rate and latency, clients, and what the source sent that could not be used."""
        problems = self.source.status()
        line = f"{self.live.stats().text}; {self.server.clients} client(s) connected"
        if self.server.refused:
            line += f" ({self.server.refused} refused: at most {self.server.max_clients} at once)"
        return line + (f"; {problems}" if problems else "")

    def run_forever(self, report_every: float = 2.0) -> None:
        """Print fps and latency every `report_every` seconds until Ctrl-C (KeyboardInterrupt)."""
        while True:
            time.sleep(report_every)
            if self.live.stats().submitted or self.source.status():
                self.say(self.status())

    def _receive(self, message) -> None:
        image = np.asarray(message.image)
        image = image.astype(image.dtype.newbyteorder("="), copy=False)
        if image.ndim == 4:  # colour: the engine's grey rule (speckle2self.mapping.colour)
            from ..mapping.colour import to_grey
            image = to_grey(image)[0]
        meta = ImageMeta(message.device_name, np.array(message.ijk_to_world_matrix, dtype=np.float64),
                         message.world_coordinate_system, float(message.timestamp))
        self.live.submit(image, meta)

    def _publish(self, result: LiveResult) -> None:
        from pyigtl import ImageMessage
        meta: ImageMeta = result.meta
        name = self._output_name(meta.name)
        message = ImageMessage(result.frame, ijk_to_world_matrix=meta.matrix, world_coordinate_system=meta.coordinates,
                               timestamp=meta.timestamp, device_name=name)
        self.server.publish(name, message.pack())

    def _output_name(self, name: str) -> str:
        wanted = name + self.suffix
        out = wanted.encode("utf-8")[:IGTL_NAME_BYTES].decode("utf-8", "ignore")
        if name in self._named:
            self._named.move_to_end(name)
        else:
            self._named[name] = None
            while len(self._named) > MAX_NAMES:
                self._named.popitem(last=False)
            note = "" if out == wanted else (f" (OpenIGTLink names hold {IGTL_NAME_BYTES} bytes; "
                                             "choose a shorter --suffix to keep it whole)")
            self.say(f"receiving IMAGE '{name}'; serving it denoised as '{out}'{note}")
        return out
