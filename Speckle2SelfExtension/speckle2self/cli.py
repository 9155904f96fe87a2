"""Command line: speckle2self denoise | finetune | info | demo | live."""
from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Sequence

from . import __version__
from .devices import DEVICE_CHOICES
from .errors import Speckle2SelfError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="speckle2self", description="Self-supervised ultrasound speckle reduction.")
    p.add_argument("--version", action="version", version=f"speckle2self {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("denoise", help="denoise image files or folders")
    d.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    d.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help="output file (one input file) or folder (several inputs, or a folder)")
    _add_run_options(d)
    d.add_argument("--domain", default="auto", choices=("auto", "envelope", "bmode"),
                   help="input domain (auto: 8-bit data is B-mode, anything else envelope)")
    d.add_argument("--grain", type=_grain, default=None, metavar="AXIAL,LATERAL",
                   help="speckle half widths in pixels, instead of measuring them from the images "
                        "(log-domain models resample each frame to the grain they were trained at)")

    f = sub.add_parser("finetune", help="self-supervised training on the frames of files/folders")
    f.add_argument("data", nargs="+", metavar="DATA", help="image files or folders (noisy frames only)")
    f.add_argument("-o", "--output", required=True, metavar="MODEL.pt", help="model file to write")
    f.add_argument("--from", dest="init", metavar="MODEL",
                   help="start from this Speckle2Self model (default: the bundled model)")
    f.add_argument("--scratch", metavar="PRESET", choices=("paper", "half", "small", "tiny"),
                   help="start from random weights with this width preset instead")
    f.add_argument("--steps", type=int, default=500)
    f.add_argument("--crop", type=int, default=128)
    f.add_argument("--batch-size", type=int, default=8)
    f.add_argument("--lr", type=float, default=None, help="learning rate (default 1e-3, 2e-4 when fine-tuning)")
    f.add_argument("--val-fraction", type=float, default=0.1, metavar="F",
                   help="fraction of frames held out for the validation loss (default 0.1)")
    f.add_argument("--patience", type=int, default=5, metavar="N",
                   help="stop after N validations without improvement (0: never; default 5)")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--domain", default="auto", choices=("auto", "envelope", "bmode"))
    f.add_argument("--resume", metavar="CHECKPOINT", help="continue an interrupted run from its checkpoint")
    f.add_argument("--device", default="auto", choices=DEVICE_CHOICES)

    i = sub.add_parser("info", help="print a model's card and verify its checksum")
    i.add_argument("model", nargs="?", help="model file (default: the bundled model)")

    m = sub.add_parser("demo", help="denoise the bundled sample and write a before/after PNG")
    m.add_argument("-o", "--output", default="speckle2self_demo", metavar="FOLDER")
    _add_run_options(m)

    v = sub.add_parser("live", help="relay an OpenIGTLink image stream, denoised, to OpenIGTLink clients")
    v.add_argument("--source", required=True, type=_endpoint, metavar="HOST:PORT",
                   help="OpenIGTLink server sending IMAGE messages (a PLUS server, a scanner)")
    v.add_argument("--serve", required=True, type=int, metavar="PORT",
                   help="port on which clients (e.g. Slicer's OpenIGTLinkIF) receive the denoised images")
    v.add_argument("--bind", default="127.0.0.1", metavar="HOST",
                   help="address to serve on (default 127.0.0.1: this machine only; 0.0.0.0: every interface)")
    v.add_argument("--suffix", default="Denoised", help="appended to each input image's name (default Denoised)")
    v.add_argument("--model", metavar="PATH", help="Speckle2Self model file (default: the bundled model)")
    v.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    v.add_argument("--precision", default="auto", choices=("auto", "float32", "float16", "bfloat16"))
    return p


def _endpoint(text: str) -> tuple[str, int]:
    from .igtl_relay import parse_endpoint
    try:
        return parse_endpoint(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _grain(text: str) -> tuple[float, float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or not all(0 < v < 100 for v in values):
        raise argparse.ArgumentTypeError(f"expected one or two positive pixel widths like 1.5,2.5, not {text!r}")
    return (values[0], values[-1])


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="PATH", help="Speckle2Self model file (default: the bundled model)")
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    p.add_argument("--batch-size", type=int, default=None, metavar="N")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = {"denoise": cmd_denoise, "finetune": cmd_finetune, "info": cmd_info, "demo": cmd_demo,
               "live": cmd_live}[args.command]
    try:
        return handler(args)
    except Speckle2SelfError as exc:
        print(f"speckle2self: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("speckle2self: interrupted; nothing was written for the unfinished file", file=sys.stderr)
        return 130


def cmd_denoise(args) -> int:
    from .pipeline import denoise_files
    from .progress import FileBars
    with FileBars() as bars:
        reports = denoise_files(args.inputs, args.output, model=args.model, device=args.device,
                                batch_size=args.batch_size, domain=args.domain, progress=bars.update,
                                grain_px=args.grain)
    failed = [r for r in reports if not r.ok]
    for r in reports:
        if r.ok:
            notes = f" ({'; '.join(r.notes)})" if r.notes else ""
            print(f"ok     {r.input} -> {r.output}: {r.frames} frames in {r.seconds:.1f}s{notes}")
        else:
            print(f"FAILED {r.input}: {r.error}", file=sys.stderr)
    print(f"{len(reports) - len(failed)} of {len(reports)} files denoised")
    return 1 if failed else 0


def cmd_finetune(args) -> int:
    from .finetune import finetune_files
    from .progress import TrainingBar
    stop = _GracefulStop()
    with stop, TrainingBar(args.steps) as bar:
        outcome = finetune_files(args.data, args.output, init=None if args.scratch else args.init,
                                 scratch_preset=args.scratch, steps=args.steps, crop=args.crop,
                                 batch_size=args.batch_size, lr=args.lr, seed=args.seed, domain=args.domain,
                                 resume=args.resume, device=args.device, val_fraction=args.val_fraction,
                                 patience=args.patience, progress=bar.update, should_stop=stop)
    if not outcome.sha256:  # a non-zero rank of a torchrun job: rank 0 reports
        return 0
    best = (f"best validation loss {outcome.best_val_loss:.5f}" if outcome.best_val_loss is not None
            else f"best smoothed loss {outcome.best_loss:.5f}")
    print(f"{outcome.stop_reason}: {outcome.steps} steps, {best}; kept the best weights")
    print(f"wrote {outcome.model_path} (sha256 {outcome.sha256})")
    print(f"checkpoint {outcome.checkpoint_path}; loss log {outcome.log_csv}"
          + (f"; curves {outcome.log_png}" if outcome.log_png else ""))
    return 0


def cmd_info(args) -> int:
    from .model_file import bundled_model_path, checksum_path, load_model
    path = Path(args.model) if args.model else bundled_model_path()
    loaded = load_model(path)
    print(json.dumps(loaded.card, indent=2, sort_keys=True))
    side = checksum_path(path)
    status = f"checksum OK ({side.name})" if side.exists() else f"no checksum file {side.name}; not verified"
    print(f"{path}\nsha256 {loaded.sha256}\n{status}")
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo
    summary = run_demo(Path(args.output), model=args.model, device=args.device, batch_size=args.batch_size)
    for line in summary:
        print(line)
    return 0


def cmd_live(args) -> int:
    from .igtl_relay import Relay
    say = lambda line: print(f"speckle2self live: {line}", flush=True)  # noqa: E731
    try:
        relay = Relay(args.source, args.serve, model=args.model, device=args.device, precision=args.precision,
                      suffix=args.suffix, bind=args.bind, say=say)
    except ImportError as exc:
        print(f"speckle2self: error: the live relay needs pyigtl (pip install pyigtl): {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"speckle2self: error: cannot serve on {args.bind}:{args.serve}: {exc}", file=sys.stderr)
        return 2
    with relay:
        try:
            relay.run_forever()
        except KeyboardInterrupt:
            say(f"stopping; {relay.status()}")
    return 0


class _GracefulStop:
    """First Ctrl-C asks training to stop and keep the best weights; a second one aborts."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __call__(self) -> bool:
        return self.requested

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping after this step; saving the best model so far (Ctrl-C again to abort)", file=sys.stderr)

    def __enter__(self) -> "_GracefulStop":
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        signal.signal(signal.SIGINT, self._previous)


if __name__ == "__main__":
    raise SystemExit(main())
