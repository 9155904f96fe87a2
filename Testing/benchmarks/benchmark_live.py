"""The live relay on loopback: frames/s and latency for a 512² 8-bit stream (figures, not assertions).

    python Testing/benchmarks/benchmark_live.py [--seconds 20] [--rate 30] [--device cpu]

A pyigtl server plays a simulated B-mode cine as PLUS would (IMAGE messages at --rate frames/s,
each stamped with its send time); `speckle2self live`'s Relay denoises it; a pyigtl client receives
the denoised messages. Printed: frames/s received by the client, the relay's own figures, dropped
frames, and latency from send to receipt (median and 90th percentile) measured with the messages'
timestamps on one clock. Also the LiveDenoiser alone (frames submitted as fast as it takes them).
"""
from __future__ import annotations

import argparse
import signal
import socket
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def live_alone(frames: np.ndarray, device: str, seconds: float) -> str:
    from speckle2self.live.denoiser import LiveDenoiser
    with LiveDenoiser(device=device) as live:
        live.submit(frames[0])
        live.latest(timeout=120)  # first frame: preparation (scan region, grain, precision check)
        end, i = time.monotonic() + seconds, 0
        while time.monotonic() < end:
            live.submit(frames[i % len(frames)])
            live.latest(timeout=10)
            i += 1
        return live.stats().text


def relay_run(frames: np.ndarray, device: str, seconds: float, rate: float) -> None:
    import pyigtl
    from speckle2self.live.igtl_relay import Relay
    source_port = free_port()
    previous = signal.getsignal(signal.SIGINT)
    source = pyigtl.OpenIGTLinkServer(port=source_port)
    signal.signal(signal.SIGINT, previous)
    with Relay(("127.0.0.1", source_port), 0, device=device, say=lambda line: None) as relay:
        client = pyigtl.OpenIGTLinkClient(host="127.0.0.1", port=relay.server.port)
        try:
            latencies, received, sent = _stream(source, client, frames, seconds, rate)
        finally:
            client.stop()
            source.stop()
        stats = relay.live.stats()
    span = seconds
    lat = sorted(latencies)
    print(f"relay on loopback, 512x512 8-bit at {rate:.0f} frames/s offered for {seconds:.0f} s: "
          f"{received / span:.1f} frames/s received by the client ({received} of {sent} sent); "
          f"latency send -> receipt median {1000 * statistics.median(lat):.0f} ms, "
          f"90th percentile {1000 * lat[int(0.9 * (len(lat) - 1))]:.0f} ms")
    print(f"relay's own figures: {stats.text}")


def _stream(source, client, frames: np.ndarray, seconds: float, rate: float) -> tuple[list[float], int, int]:
    import pyigtl
    warm_end = time.time() + 120
    while time.time() < warm_end:  # until the relay is connected and prepared (first frame)
        source.send_message(pyigtl.ImageMessage(frames[0][None], timestamp=time.time(), device_name="Image"),
                            wait=False)
        if client.wait_for_message("ImageDenoised", timeout=0.5) is not None:
            break
    latencies, received, sent = [], 0, 0
    start = time.time()
    next_send = start
    while time.time() < start + seconds:
        now = time.time()
        if now >= next_send:
            source.send_message(pyigtl.ImageMessage(frames[sent % len(frames)][None], timestamp=now,
                                                    device_name="Image"), wait=False)
            sent += 1
            next_send += 1.0 / rate
        message = client.wait_for_message("ImageDenoised", timeout=0.002)
        if message is not None:
            latencies.append(time.time() - message.timestamp)
            received += 1
    return latencies, received, sent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=30.0, help="frames/s the test server offers")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    import torch
    from benchmark_inference import bmode_cine
    frames = bmode_cine(16, (512, 512))
    print(f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"LiveDenoiser alone, 512x512 8-bit, one frame at a time: {live_alone(frames, args.device, args.seconds / 2)}")
    relay_run(frames, args.device, args.seconds, args.rate)


if __name__ == "__main__":
    main()
