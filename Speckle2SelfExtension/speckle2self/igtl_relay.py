"""OpenIGTLink relay: IMAGE messages in from a server (PLUS, a scanner), denoised IMAGE messages out.

    speckle2self live --source HOST:PORT --serve PORT

The relay connects as a client to the source server and reconnects whenever it goes away. Each
IMAGE message goes to a LiveDenoiser (the newest frame wins, so the relay never falls behind the
probe); each result is served as an IMAGE message named `<device name><suffix>` with the input's
image-to-world matrix, coordinate system and timestamp to every client connected to the serve port
(3D Slicer's OpenIGTLinkIF, another PLUS). Other messages (transforms, strings) are forwarded
unchanged, so a client that connects only to the relay still gets the tracking data.

pyigtl (pure Python) packs and parses the messages; it is imported only when a relay starts. Its
own client does not notice a server that has gone away, and its server serves one client at a time,
so the sockets here are our own.
"""
from __future__ import annotations

import select
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .live import LiveDenoiser, LiveResult

Say = Callable[[str], None]
IGTL_NAME_BYTES = 20
"""OpenIGTLink headers (versions 1 and 2) hold device names of at most 20 bytes."""
POLL_S = 0.2
RETRY_S = 1.0


@dataclass(frozen=True)
class ImageMeta:
    """What an output message keeps from its input message."""

    name: str
    matrix: np.ndarray
    coordinates: str
    timestamp: float


def parse_endpoint(text: str) -> tuple[str, int]:
    """'HOST:PORT' (or ':PORT' / 'PORT' for this machine) as (host, port)."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT with a port between 1 and 65535, not {text!r}")
    return host or "127.0.0.1", int(port)


def _read_exact(sock: socket.socket, size: int, stop: threading.Event) -> bytes:
    """`size` bytes from `sock`; ConnectionError when the peer closes, InterruptedError on stop."""
    data = bytearray()
    while len(data) < size:
        if stop.is_set():
            raise InterruptedError
        try:
            chunk = sock.recv(min(size - len(data), 1 << 20))
        except socket.timeout:
            continue
        if not chunk:
            raise ConnectionError("the connection was closed")
        data += chunk
    return bytes(data)


def read_message(sock: socket.socket, stop: threading.Event) -> tuple[dict, bytes, bytes]:
    """One OpenIGTLink message: parsed header fields, raw header, raw body."""
    from pyigtl import MessageBase
    header = _read_exact(sock, MessageBase.IGTL_HEADER_SIZE, stop)
    fields = MessageBase.parse_header(header)
    return fields, header, _read_exact(sock, fields["body_size"], stop)


class SourceConnection:
    """Keeps a client connection to the source server open and hands on what arrives (on its own thread)."""

    def __init__(self, host: str, port: int, on_image: Callable[[object], None],
                 on_other: Callable[[str, bytes], None], say: Say) -> None:
        self.host, self.port = host, port
        self.on_image, self.on_other, self.say = on_image, on_other, say
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="speckle2self-igtl-source", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        waiting_said = False
        while not self._stop.is_set():
            try:
                sock = socket.create_connection((self.host, self.port), timeout=POLL_S)
            except OSError:
                if not waiting_said:
                    self.say(f"waiting for an OpenIGTLink server (PLUS, a scanner) at {self.host}:{self.port}…")
                    waiting_said = True
                self._stop.wait(RETRY_S)
                continue
            waiting_said = False
            self.say(f"connected to {self.host}:{self.port}; waiting for IMAGE messages")
            self.connected.set()
            try:
                self._receive(sock)
            except InterruptedError:
                return
            except (ConnectionError, OSError) as exc:
                self.say(f"the source at {self.host}:{self.port} went away ({exc}); reconnecting")
            finally:
                self.connected.clear()
                sock.close()

    def _receive(self, sock: socket.socket) -> None:
        from pyigtl import ImageMessage
        while True:
            fields, header, body = read_message(sock, self._stop)
            if fields["message_type"] == "IMAGE":
                message = ImageMessage()
                message.unpack(fields, body)
                self.on_image(message)
            else:
                self.on_other(fields["device_name"], header + body)


class MessageServer:
    """Serves the newest message of each device name to every connected client.

    A client that cannot keep up skips to the newest message; one that stops reading for
    SEND_TIMEOUT_S seconds is disconnected. Whatever clients send is read and ignored.
    """

    SEND_TIMEOUT_S = 5.0

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self._listener = socket.create_server((host, port), reuse_port=False)
        self._listener.settimeout(POLL_S)
        self.host, self.port = host, self._listener.getsockname()[1]
        self._latest: dict[str, tuple[int, bytes]] = {}
        self._sequence = 0
        self._changed = threading.Condition()
        self._closed = False
        self._clients: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._accept_loop, name="speckle2self-igtl-server", daemon=True)
        self._accept.start()

    @property
    def clients(self) -> int:
        return sum(t.is_alive() for t in self._clients)

    def publish(self, name: str, data: bytes) -> None:
        with self._changed:
            self._sequence += 1
            self._latest[name] = (self._sequence, data)
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
            thread = threading.Thread(target=self._serve, args=(conn,), name="speckle2self-igtl-client", daemon=True)
            self._clients = [t for t in self._clients if t.is_alive()] + [thread]
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
                 precision: str = "auto", suffix: str = "Denoised", bind: str = "127.0.0.1", say: Say = print) -> None:
        import pyigtl  # noqa: F401  (fail here, with a clear message, if it is missing)
        self.suffix, self.say = suffix, say
        self._named: set[str] = set()
        self.server = MessageServer(serve_port, bind)
        try:
            self.live = LiveDenoiser(model, device, precision=precision, on_result=self._publish)
        except BaseException:
            self.server.close()
            raise
        self.source = SourceConnection(source[0], source[1], self._receive, self.server.publish, say)

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
        return f"{self.live.stats().text}; {self.server.clients} client(s) connected"

    def run_forever(self, report_every: float = 2.0) -> None:
        """Print fps and latency every `report_every` seconds until Ctrl-C (KeyboardInterrupt)."""
        while True:
            time.sleep(report_every)
            if self.live.stats().submitted:
                self.say(self.status())

    def _receive(self, message) -> None:
        image = np.asarray(message.image)
        image = image.astype(image.dtype.newbyteorder("="), copy=False)
        if image.ndim == 4:  # colour: the engine's grey rule (speckle2self.colour)
            from .colour import to_grey
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
        if name not in self._named:
            self._named.add(name)
            note = "" if out == wanted else (f" (OpenIGTLink names hold {IGTL_NAME_BYTES} bytes; "
                                             "choose a shorter --suffix to keep it whole)")
            self.say(f"receiving IMAGE '{name}'; serving it denoised as '{out}'{note}")
        return out
