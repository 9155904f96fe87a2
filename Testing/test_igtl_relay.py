"""The OpenIGTLink relay on loopback, with pyigtl at both ends: a test server sending frames as PLUS
would, the relay, and a test client receiving the denoised frames as Slicer would.

Every wait is bounded; ports are free ephemeral ports on 127.0.0.1.
"""
import contextlib
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from interrupts import default_sigint

pyigtl = pytest.importorskip("pyigtl")

from speckle2self.live.igtl_relay import Relay, parse_endpoint  # noqa: E402

WAIT = 60.0
MATRIX = np.array([[0.2, 0, 0, 10.0], [0, 0.3, 0, -20.0], [0, 0, 1.0, 5.0], [0, 0, 0, 1]])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _frame(cine, i=0):
    grey = cine.envelope[i] / cine.envelope.max()
    return np.clip(np.rint(255 * grey), 0, 255).astype(np.uint8)[None]  # (k, j, i) with k = 1


def _send_until_received(source, client, image, name="ImageDenoised", timestamp=1700000000.25):
    """Send a frame every 0.2 s until the relay delivers one (it may still be connecting)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        source.send_message(pyigtl.ImageMessage(image, ijk_to_world_matrix=MATRIX, timestamp=timestamp,
                                                device_name="Image"), wait=False)
        received = client.wait_for_message(name, timeout=0.2)
        if received is not None:
            return received
    raise AssertionError(f"no {name} message within {WAIT} s")


@contextlib.contextmanager
def _source_server(port):
    """A pyigtl server standing in for PLUS; its signal handlers are put back afterwards."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    server = pyigtl.OpenIGTLinkServer(port=port)
    try:
        yield server
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@pytest.fixture
def source_port():
    return _free_port()


@pytest.fixture
def relay(tiny_model, source_port):
    with Relay(("127.0.0.1", source_port), 0, model=tiny_model, device="cpu", precision="float32",
               say=lambda line: None) as running:
        yield running


@pytest.fixture
def client(relay):
    receiver = pyigtl.OpenIGTLinkClient(host="127.0.0.1", port=relay.server.port)
    yield receiver
    receiver.stop()


def test_a_frame_comes_back_denoised_with_its_name_matrix_and_timestamp(relay, client, source_port, cine):
    image = _frame(cine)
    with _source_server(source_port) as source:
        received = _send_until_received(source, client, image)
    assert received.device_name == "ImageDenoised"
    assert received.timestamp == pytest.approx(1700000000.25, abs=1e-6)
    assert np.allclose(received.ijk_to_world_matrix, MATRIX, atol=1e-4)
    assert received.image.shape == image.shape and received.image.dtype == image.dtype
    assert (received.image != image).mean() > 0.3


def test_the_relay_reconnects_when_the_source_comes_back(relay, client, source_port, cine):
    with _source_server(source_port) as first:
        _send_until_received(first, client, _frame(cine, 0), timestamp=1.0)
    with _source_server(source_port) as second:
        received = _send_until_received(second, client, _frame(cine, 1), timestamp=2.0)
        while received.timestamp != pytest.approx(2.0):
            received = _send_until_received(second, client, _frame(cine, 1), timestamp=2.0)
    assert received.image.shape == _frame(cine, 1).shape


def test_every_connected_client_receives_the_frames(relay, client, source_port, cine):
    other = pyigtl.OpenIGTLinkClient(host="127.0.0.1", port=relay.server.port)
    try:
        with _source_server(source_port) as source:
            _send_until_received(source, client, _frame(cine))
            assert _send_until_received(source, other, _frame(cine)).device_name == "ImageDenoised"
    finally:
        other.stop()


def test_the_relay_says_what_it_is_waiting_for(tiny_model, source_port):
    lines = []
    with Relay(("127.0.0.1", source_port), 0, model=tiny_model, device="cpu", say=lines.append):
        deadline = time.monotonic() + WAIT
        while not any("waiting for an OpenIGTLink server" in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert any(f"127.0.0.1:{source_port}" in line and "waiting" in line for line in lines)


def test_the_command_stops_cleanly_on_ctrl_c(source_port):
    command = [sys.executable, "-m", "speckle2self", "live", "--source", f"127.0.0.1:{source_port}",
               "--serve", "0", "--device", "cpu"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               preexec_fn=default_sigint)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline and not any("waiting for" in line for line in lines):
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=WAIT)
        reader.join(WAIT)
    finally:
        if process.poll() is None:
            process.kill()
    output = "".join(lines)
    assert process.returncode == 0, output
    assert "serving denoised images on 127.0.0.1:" in output and "stopping" in output


def test_a_long_name_is_cut_to_what_openigtlink_carries(relay):
    assert relay._output_name("Image_Reference") == "Image_ReferenceDenoi"


@pytest.mark.parametrize("text, expected", [("localhost:18944", ("localhost", 18944)), (":18944", ("127.0.0.1", 18944))])
def test_endpoints_are_host_and_port(text, expected):
    assert parse_endpoint(text) == expected


def test_a_bad_endpoint_is_refused():
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_endpoint("localhost")


@pytest.mark.parametrize("options, message", [
    (["--serve", "70000"], "argument --serve: expected a port from 1 to 65535 (0: any free port), not '70000'"),
    (["--serve", "-1"], "argument --serve: expected a port from 1 to 65535 (0: any free port), not '-1'"),
    (["--serve", "0", "--bind", "no such host!"], "argument --bind: expected an IP address or a host name"),
    (["--serve", "0", "--max-message-mb", "0"], "argument --max-message-mb: expected a positive, finite number"),
])
def test_a_bad_port_host_or_limit_is_a_usage_error(options, message):
    res = subprocess.run([sys.executable, "-m", "speckle2self", "live", "--source", "127.0.0.1:18944", *options],
                         capture_output=True, text=True, timeout=WAIT)
    assert res.returncode == 2 and message in res.stderr
    assert "this is a bug" not in res.stderr and "Traceback" not in res.stderr


def test_a_bad_source_host_is_refused():
    with pytest.raises(ValueError, match="expected an IP address or a host name, not 'a..b'"):
        parse_endpoint("a..b:18944")


class _CorruptedImage(pyigtl.ImageMessage):
    """An IMAGE whose last pixel byte is flipped after its CRC was computed, as a bad link would."""

    def pack(self):
        data = super().pack()
        return data[:-1] + bytes([data[-1] ^ 0xFF])


def test_the_status_line_says_what_the_source_sent_that_was_dropped(relay, client, source_port, cine):
    with _source_server(source_port) as source:
        _send_until_received(source, client, _frame(cine))
        source.send_message(_CorruptedImage(_frame(cine), device_name="Image"), wait=True)
        deadline = time.monotonic() + WAIT
        while "source:" not in relay.status() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "source: 1 message(s) dropped (1 with a bad CRC), 0 connection(s) closed" in relay.status()
        received = _send_until_received(source, client, _frame(cine, 1), timestamp=3.0)
        while received.timestamp != pytest.approx(3.0):  # the stream goes on: a newer frame comes through
            received = _send_until_received(source, client, _frame(cine, 1), timestamp=3.0)


def test_device_names_kept_and_replayed_to_a_new_client_are_bounded():
    from speckle2self.live.igtl_relay import MAX_NAMES, MessageServer
    server = MessageServer(0)
    try:
        for i in range(5000):
            server.publish(f"Tool{i}", pyigtl.StringMessage("x", device_name=f"Tool{i}").pack())
        assert server.names == [f"Tool{i}" for i in range(5000 - MAX_NAMES, 5000)]
        newcomer = pyigtl.OpenIGTLinkClient(host="127.0.0.1", port=server.port)
        try:
            assert newcomer.wait_for_message("Tool4999", timeout=WAIT) is not None
            assert newcomer.wait_for_message("Tool0", timeout=0.5) is None
        finally:
            newcomer.stop()
    finally:
        server.close()


def test_the_bytes_kept_for_clients_are_bounded():
    from speckle2self.live.igtl_relay import MessageServer
    server = MessageServer(0, max_bytes=10_000)
    try:
        for i in range(50):
            server.publish(f"Image{i}", bytes(3000))
        assert len(server.names) == 3 and server.names[-1] == "Image49"
    finally:
        server.close()


def test_image_names_announced_are_bounded(relay):
    from speckle2self.live.igtl_relay import MAX_NAMES
    for i in range(5000):
        relay._output_name(f"Image{i}")
    assert len(relay._named) == MAX_NAMES


def _wait_until(condition, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def test_clients_beyond_the_cap_are_closed_and_counted_and_a_freed_place_is_served():
    from speckle2self.live.igtl_relay import MessageServer
    server = MessageServer(0, max_clients=2)
    first, second = (socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) for _ in range(2))
    try:
        assert _wait_until(lambda: server.clients == 2)
        with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as third:
            assert third.recv(1) == b""
        assert server.refused == 1
        first.close()
        assert _wait_until(lambda: server.clients < 2)
        with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as fourth:
            assert _wait_until(lambda: server.clients == 2)
            server.publish("Image", b"x" * 10)
            assert fourth.recv(10) == b"x" * 10
        assert server.refused == 1
    finally:
        first.close()
        second.close()
        server.close()


def test_the_status_line_counts_clients_refused_beyond_the_cap(relay):
    relay.server.max_clients = 0
    with socket.create_connection(("127.0.0.1", relay.server.port), timeout=WAIT) as extra:
        assert extra.recv(1) == b""
    assert "1 refused: at most 0 at once" in relay.status()
