"""The relay's OpenIGTLink reader against a hostile source on loopback: whatever the source sends,
a message that cannot be used is counted and dropped and the stream goes on; a message over the
size limit is refused unread and a stalled one times out (the connection is reopened); memory stays
bounded. The source here is a raw socket on 127.0.0.1 that sends exactly the bytes each test makes.
"""
import socket
import struct
import threading
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

pyigtl = pytest.importorskip("pyigtl")

from pyigtl.messages import CRC64  # noqa: E402

from speckle2self.live.igtl_messages import HEADER, HEADER_SIZE  # noqa: E402
from speckle2self.live.igtl_relay import SourceConnection  # noqa: E402

WAIT = 20.0
LIMIT = 64 << 10  # the reader's message limit in these tests: 64 KiB
STALL_S = 0.3


def _image(timestamp=1.0, name="Probe", version=1, side=16):
    message = pyigtl.ImageMessage(np.full((1, side, side), 7, np.uint8), timestamp=timestamp, device_name=name)
    message.header_version = version
    return message.pack()


def _repack(message, *, body=None, version=None, device=None, crc=None):
    """The message with some header fields or its body replaced; size and CRC follow the body
    unless `crc` is given."""
    fields = list(HEADER.unpack(message[:HEADER_SIZE]))
    body = message[HEADER_SIZE:] if body is None else body
    fields[0] = fields[0] if version is None else version
    fields[2] = fields[2] if device is None else device
    fields[5], fields[6] = len(body), CRC64(body) if crc is None else crc
    return HEADER.pack(*fields) + body


def _image_body(**changes):
    """A valid IMAGE body with bytes of its image header replaced: {offset: bytes}."""
    body = bytearray(_image()[HEADER_SIZE:])
    for offset, value in changes.items():
        body[int(offset[1:]):int(offset[1:]) + len(value)] = value
    return bytes(body)


class HostileSource:
    """A listening socket on 127.0.0.1 that the reader connects to, and the reader itself."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.images, self.others, self.lines = [], [], []
        self.received = threading.Condition()
        self.reader = SourceConnection("127.0.0.1", self.listener.getsockname()[1], self._image, self._other,
                                       self.lines.append, max_bytes=LIMIT, stall_s=STALL_S, retry_s=0.05)
        self.reader.start()
        self.conn = None

    def _image(self, message):
        with self.received:
            self.images.append(message.timestamp)
            self.received.notify_all()

    def _other(self, name, data):
        self.others.append(name)

    def accept(self, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            if self.conn is not None:
                self.conn.close()
            self.conn = conn
            return conn
        raise AssertionError("the reader did not connect")

    def send(self, data):
        try:
            self.conn.sendall(data)
        except OSError:  # the reader closed this connection (a refused or stalled message)
            pass

    def goes_on(self, timestamp, timeout=WAIT):
        """Send a valid IMAGE (again, and on every new connection) until the reader delivers it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.send(_image(timestamp))
            with self.received:
                if self.received.wait_for(lambda: timestamp in self.images, 0.1):
                    return True
            try:
                self.listener.settimeout(0)
                self.accept(0.01)
            except (AssertionError, BlockingIOError, OSError):
                pass
            finally:
                self.listener.settimeout(0.05)
        return False

    def hang_up(self):
        """Close this connection: the reader connects again for the next test."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def close(self):
        self.reader.stop()
        if self.conn is not None:
            self.conn.close()
        self.listener.close()


@pytest.fixture
def source():
    hostile = HostileSource()
    hostile.accept()
    yield hostile
    hostile.close()


MALFORMED = {
    "sizes 65535³ with a small body": _repack(_image(), body=_image_body(b6=struct.pack(">HHH", 65535, 65535, 65535),
                                                                         b66=struct.pack(">HHH", 65535, 65535, 65535))),
    "a device name that is not UTF-8": _repack(_image(), device=b"\xff\xfe\xfd" + bytes(17)),
    "scalar type 99": _repack(_image(), body=_image_body(b3=bytes([99]))),
    "a sub-volume": _repack(_image(), body=_image_body(b60=struct.pack(">HHH", 1, 0, 0))),
    "a 3-byte body": _repack(_image(), body=b"abc"),
    "version 2 claiming 4 GB of metadata": _repack(_image(version=2),
                                                   body=struct.pack(">HHII", 12, 65535, 2 ** 32 - 1, 0)
                                                   + _image(version=2)[HEADER_SIZE + 12:]),
}


@pytest.mark.parametrize("what", list(MALFORMED))
def test_a_malformed_image_is_dropped_and_the_stream_goes_on(source, what):
    source.send(MALFORMED[what])
    assert source.goes_on(timestamp=2.0)
    assert source.reader.counts["dropped"] == 1 and source.reader.counts["closed"] == 0
    assert "source: 1 message(s) dropped (0 with a bad CRC), 0 connection(s) closed" in source.reader.status()
    assert any(line.startswith("dropped a") and line.endswith("the stream goes on") for line in source.lines)


def test_a_corrupted_body_is_dropped_by_its_crc(source):
    good = _image()
    source.send(good[:-1] + bytes([good[-1] ^ 0xFF]))
    assert source.goes_on(timestamp=2.0)
    assert source.reader.counts["crc"] == 1 and 1.0 not in source.images
    assert "whose CRC does not match its body" in source.reader.status()


def test_a_message_over_the_limit_is_refused_unread_and_the_source_reopened(source):
    tracemalloc.start()
    try:
        source.send(_repack(_image(), body=b"")[:HEADER_SIZE - 16] + struct.pack(">QQ", 4 << 30, 0))
        for _ in range(16):  # 1 MiB of the announced 4 GiB, sixteen times the limit
            source.send(bytes(LIMIT))
        assert source.goes_on(timestamp=2.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * LIMIT + (1 << 20)
    assert source.reader.counts["closed"] == 1
    assert any(f"announces a body of {4 << 30} bytes, more than the limit of 0.0625 MiB" in line
               and "reconnecting" in line for line in source.lines)


def test_a_stalled_message_times_out_and_the_source_is_reopened(source):
    source.send(_image()[:HEADER_SIZE + 10])  # the header and 10 bytes of the body, then nothing
    deadline = time.monotonic() + WAIT
    while source.reader.counts["closed"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert source.reader.counts["closed"] == 1
    assert any("bytes of a message in" in line and "(stalled, or slower than 1 MiB/s)" in line for line in source.lines)
    assert source.goes_on(timestamp=2.0)


def test_other_messages_are_handed_on_with_their_header(source):
    source.send(pyigtl.TransformMessage(np.eye(4), device_name="Probe").pack())
    assert source.goes_on(timestamp=2.0) and source.others == ["Probe"]


def _mutated(data: st.DataObject, valid: bytes) -> bytes:
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(valid) - 1), st.integers(1, 255)), max_size=4))
    mutated = bytearray(valid)
    for position, mask in flips:
        mutated[position] ^= mask
    return bytes(mutated[:data.draw(st.integers(0, len(mutated)))])


_random_header = st.builds(lambda version, kind, device, size, crc, body: HEADER.pack(version, kind, device, 0, 0,
                                                                                     size, crc) + body,
                           st.integers(0, 65535), st.sampled_from([b"IMAGE", b"TRANSFORM", b"STRING", b"\xff" * 12]),
                           st.binary(min_size=20, max_size=20),
                           st.one_of(st.integers(0, 2 * LIMIT), st.integers(0, 2 ** 64 - 1)),
                           st.integers(0, 2 ** 64 - 1), st.binary(max_size=256))


@pytest.fixture(scope="module")
def shared_source():
    """One reader for all examples (a new connection each), so no threads are started per example."""
    hostile = HostileSource()
    yield hostile
    hostile.close()


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck),
          phases=[Phase.explicit, Phase.generate])  # no shrinking: bounded in time, the example is printed
@given(data=st.data())
def test_whatever_the_source_sends_the_stream_goes_on_in_bounded_memory(shared_source, data):
    """Random bytes, random headers, and valid messages with flipped bytes or cut short, in any order:
    afterwards a valid IMAGE still arrives (on this connection or a reopened one), and the reader
    never holds more than about its message limit."""
    chunk = st.one_of(st.binary(max_size=512), _random_header,
                      st.sampled_from([_image(), _image(version=2), *MALFORMED.values()]))
    chunks = data.draw(st.lists(chunk, max_size=6))
    mutations = [_mutated(data, valid) for valid in data.draw(st.lists(st.sampled_from([_image(), _image(version=2)]),
                                                                       max_size=3))]
    hostile = shared_source
    tracemalloc.start()
    try:
        hostile.accept()
        tracemalloc.reset_peak()
        for piece in chunks + mutations:
            hostile.send(piece)
        stamp = float(len(hostile.images) + 10)
        assert hostile.goes_on(stamp, timeout=10.0), hostile.lines[-5:]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        hostile.hang_up()
    assert peak < 4 * LIMIT + (1 << 20)
    assert hostile.reader.running
