"""Reading OpenIGTLink messages from a peer that may send anything: bounded, checked, never fatal.

A message is a 58-byte header (version u16, type char[12], device name char[20], timestamp u32+u32,
body size u64, CRC-64 u64, all big-endian) and a body. The header is read and checked here, before
any of the body: a body larger than the limit is refused unread (the connection is closed: there is
no way to skip gigabytes in step), and a message that stalls half-way times out. A body whose
CRC-64 differs from its header's, or a header or IMAGE body that cannot be decoded, is a
MalformedMessage: the caller counts and drops it, and the stream goes on (the body was read, so the
next message starts where it should). Only pyigtl's ImageMessage unpacking and CRC function are
used, inside these checks; pyigtl's own reader trusts every field.
"""
from __future__ import annotations

import socket
import struct
import threading
import time
from dataclasses import dataclass

import numpy as np

HEADER = struct.Struct("> H 12s 20s I I Q Q")
HEADER_SIZE = HEADER.size  # 58
DEFAULT_MAX_MESSAGE_MB = 64
"""Largest message accepted by default: a 4096 × 4096 × 4-byte frame; ultrasound frames are
0.1-4 MB, and a PLUS volume reconstruction sends at most a few tens of MB."""
DEFAULT_STALL_S = 10.0
"""How long a started message may take (plus a second per MiB, MIN_RATE) before the connection is
given up as stalled."""
MIN_RATE = 1 << 20
"""Bytes per second a started message must arrive at, at least (a 100 Mbit/s link carries 12 MiB/s)."""
IMAGE_HEAD = struct.Struct("> H B B B B H H H 12f H H H H H H")
SCALAR_TYPES = {2: np.int8, 3: np.uint8, 4: np.int16, 5: np.uint16, 6: np.int32, 7: np.uint32,
                10: np.float32, 11: np.float64}
_RECV_CHUNK = 1 << 20


class MalformedMessage(ValueError):
    """A message that arrived whole but cannot be used: counted and dropped, the stream goes on."""


class CrcMismatch(MalformedMessage):
    """A body whose CRC-64 is not the one its header announced (corrupted in transit)."""


class StreamError(ConnectionError):
    """The connection cannot go on (a message too large to read, a stalled body): close it and say why."""


@dataclass(frozen=True)
class Header:
    """An OpenIGTLink header's fields, checked; `raw` is the 58 bytes as received."""

    version: int
    type: str
    device: str
    timestamp: float
    body_size: int
    crc: int
    raw: bytes


def parse_header(raw: bytes) -> Header:
    """The header's fields; MalformedMessage for a type or device name that is not text."""
    version, kind, device, seconds, fraction, body_size, crc = HEADER.unpack(raw)
    try:
        kind_text = kind.rstrip(b"\0 ").decode("ascii")
        device_text = device.split(b"\0", 1)[0].rstrip(b" ").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedMessage(f"a header whose type or device name is not text ({exc.reason})") from None
    return Header(version, kind_text, device_text, seconds + fraction / 2 ** 32, body_size, crc, raw)


def read_exact(sock: socket.socket, size: int, stop: threading.Event, limit_s: float | None) -> bytes:
    """`size` bytes from `sock` (its timeout is the poll interval). ConnectionError when the peer
    closes, InterruptedError on stop, StreamError when they take longer than `limit_s` seconds
    (None: no limit, for the wait between messages)."""
    data = bytearray()
    deadline = None if limit_s is None else time.monotonic() + limit_s
    while len(data) < size:
        if stop.is_set():
            raise InterruptedError
        if deadline is not None and time.monotonic() > deadline:
            raise StreamError(f"the source sent {len(data)} of the {size} bytes of a message in {limit_s:.1f} s "
                              "(stalled, or slower than 1 MiB/s)")
        try:
            chunk = sock.recv(min(size - len(data), _RECV_CHUNK))
        except socket.timeout:
            continue
        if not chunk:
            raise ConnectionError("the connection was closed")
        data += chunk
    return bytes(data)


def read_message(sock: socket.socket, stop: threading.Event, max_bytes: int,
                 stall_s: float = DEFAULT_STALL_S) -> tuple[Header, bytes]:
    """The next message's header and body. The header's first byte may be waited for as long as the
    source is idle; the rest must come within stall_s, plus a second per MiB of body (a source
    that drips bytes into a large announced body cannot hold the stream). A body over `max_bytes` is refused unread
    (StreamError); a bad CRC or header is a MalformedMessage after the body was read."""
    first = read_exact(sock, 1, stop, None)
    raw = first + read_exact(sock, HEADER_SIZE - 1, stop, stall_s)
    body_size = HEADER.unpack(raw)[5]
    if body_size > max_bytes:
        raise StreamError(f"a message announces a body of {body_size} bytes, more than the limit of "
                          f"{max_bytes / 2 ** 20:g} MiB (--max-message-mb); it was not read")
    body = read_exact(sock, body_size, stop, stall_s + body_size / MIN_RATE)
    header = parse_header(raw)
    if crc64(body) != header.crc:
        raise CrcMismatch(f"a {header.type or 'message'} whose CRC does not match its body (corrupted in transit)")
    return header, body


def crc64(body: bytes) -> int:
    """OpenIGTLink's CRC-64 (ECMA-182 polynomial), as pyigtl computes it when it packs a message."""
    from pyigtl.messages import CRC64
    return CRC64(body)


def decode_image(header: Header, body: bytes):
    """A pyigtl ImageMessage from a checked header and body; MalformedMessage for anything that is
    not a whole, single-volume image of a known scalar type that fits its body."""
    from pyigtl import ImageMessage
    content = _image_content(header.version, body)
    _check_image(content)
    message = ImageMessage()
    fields = {"header_version": 1, "message_type": "IMAGE", "device_name": header.device,
              "timestamp": header.timestamp, "body_size": len(content)}
    try:
        message.unpack(fields, content)
    except Exception as exc:  # a hostile body must never reach past this point as an exception
        raise MalformedMessage(f"an IMAGE that cannot be decoded ({type(exc).__name__}: {exc})") from None
    message.header_version = header.version
    return message


def _image_content(version: int, body: bytes) -> bytes:
    """The IMAGE content without a version-2 extended header and metadata (checked to fit the body)."""
    if version < 2:
        return body
    if len(body) < 12:
        raise MalformedMessage(f"a version-{version} IMAGE of {len(body)} bytes, too short for its extended header")
    extended, meta_header, meta_body, _message_id = struct.unpack("> H H I I", body[:12])
    end = len(body) - meta_header - meta_body
    if extended < 12 or end < extended:
        raise MalformedMessage(f"a version-{version} IMAGE whose extended header ({extended} bytes) and metadata "
                               f"({meta_header + meta_body} bytes) do not fit its {len(body)}-byte body")
    return body[extended:end]


def _check_image(content: bytes) -> None:
    if len(content) < IMAGE_HEAD.size:
        raise MalformedMessage(f"an IMAGE of {len(content)} bytes, shorter than its {IMAGE_HEAD.size}-byte "
                               "image header")
    values = IMAGE_HEAD.unpack(content[:IMAGE_HEAD.size])
    components, scalar, sizes = values[1], values[2], values[5:8]
    start, sub_sizes = values[20:23], values[23:26]
    if scalar not in SCALAR_TYPES:
        raise MalformedMessage(f"an IMAGE of unknown scalar type {scalar}")
    if components < 1 or min(sizes) < 1:
        raise MalformedMessage(f"an IMAGE of size {sizes} with {components} components")
    if tuple(start) != (0, 0, 0) or tuple(sub_sizes) != tuple(sizes):
        raise MalformedMessage("an IMAGE that carries a sub-volume (not supported)")
    expected = int(np.prod(sizes, dtype=np.int64)) * components * np.dtype(SCALAR_TYPES[scalar]).itemsize
    if expected != len(content) - IMAGE_HEAD.size:
        raise MalformedMessage(f"an IMAGE of size {sizes} × {components} needs {expected} bytes of pixels; "
                               f"its body holds {len(content) - IMAGE_HEAD.size}")
