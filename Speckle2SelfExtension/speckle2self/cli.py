"""Command line: speckle2self denoise | finetune | info | demo | live."""
from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Sequence

from . import __version__
from .networks.devices import DEVICE_CHOICES
from .errors import InputError, OutputError, Speckle2SelfError
from .live.igtl_messages import DEFAULT_MAX_MESSAGE_MB
from .failures import reason
from .inference.options import MAX_SEED, MIN_TILE_SIZE, PRECISIONS


EXIT_FILE_FAILED = 1
"""At least one file could not be processed (or the one result could not be written)."""
EXIT_CANNOT_RUN = 2
"""The command cannot run as given: a bad option, input or model; nothing was processed."""
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="speckle2self", description="Self-supervised ultrasound speckle reduction.",
                                epilog="Exit status: 0 done, 1 a file failed, 2 the command cannot run as given, "
                                       "130 interrupted.")
    p.add_argument("--version", action="version", version=f"speckle2self {__version__}")
    p.add_argument("--debug", action="store_true", help="print Python tracebacks for errors (for bug reports)")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("denoise", help="denoise image files or folders")
    d.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    d.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help="output file (one input file; its extension sets the format) or folder (several "
                        "inputs, or a folder; a name with an extension must already be a folder)")
    _add_run_options(d)
    d.add_argument("--domain", default="auto", choices=("auto", "envelope", "bmode"),
                   help="input domain (auto: 8-bit data is B-mode, anything else envelope)")
    d.add_argument("--grain", type=_grain, default=None, metavar="AXIAL,LATERAL",
                   help="speckle half widths in pixels, instead of measuring them from the images "
                        "(log-domain models resample each frame to the grain they were trained at)")
    d.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="arithmetic on the device (auto: float16 on CUDA if it agrees with float32, else float32)")
    d.add_argument("--tile-size", type=_whole_at_least(MIN_TILE_SIZE), default=None, metavar="PIXELS",
                   help=f"run frames larger than this in overlapping tiles (at least {MIN_TILE_SIZE}; "
                        "default 2048 on CPU, 1024 on GPU)")
    d.add_argument("--strength", type=_fraction, default=1.0, metavar="S",
                   help="blend of input and result: 0 keeps the input, 1 (default) is fully denoised")
    _add_archive_options(d)

    f = sub.add_parser("finetune", help="self-supervised training on the frames of files/folders")
    f.add_argument("data", nargs="+", metavar="DATA", help="image files or folders (noisy frames only)")
    f.add_argument("-o", "--output", required=True, metavar="MODEL.pt", help="model file to write")
    f.add_argument("--from", dest="init", metavar="MODEL",
                   help="start from this Speckle2Self model (default: the bundled model)")
    f.add_argument("--scratch", metavar="PRESET", choices=("paper", "half", "small", "tiny"),
                   help="start from random weights with this width preset instead")
    f.add_argument("--steps", type=_whole_at_least(1), default=None, metavar="N",
                   help="training steps in total (default 500; with --resume: the checkpoint's, and N must "
                        "exceed the steps it has done)")
    f.add_argument("--crop", type=_multiple_of(16), default=None, metavar="PIXELS",
                   help="side of the square training crops, a multiple of 16, and of the model's own size "
                        "step where it is larger (32 for the bundled model; default 128; fixed by the checkpoint "
                        "with --resume)")
    f.add_argument("--batch-size", type=_whole_at_least(1), default=None, metavar="N",
                   help="crops per training step (default 8; fixed by the checkpoint with --resume)")
    f.add_argument("--lr", type=_positive_float, default=None,
                   help="learning rate (default 1e-3, 2e-4 when fine-tuning; fixed by the checkpoint with --resume)")
    f.add_argument("--val-fraction", type=float, default=0.1, metavar="F",
                   help="fraction of frames held out for the validation loss (default 0.1)")
    f.add_argument("--patience", type=_whole_at_least(0), default=5, metavar="N",
                   help="stop after N validations without improvement (0: never; default 5)")
    f.add_argument("--seed", type=_whole_from(0, MAX_SEED), default=None, metavar="N",
                   help=f"random seed for crops, augmentation and the validation split, 0 to {MAX_SEED} (default "
                        "0; fixed by the checkpoint with --resume)")
    f.add_argument("--domain", default="auto", choices=("auto", "envelope", "bmode"),
                   help="input domain (auto: 8-bit data is B-mode, anything else envelope)")
    f.add_argument("--resume", metavar="CHECKPOINT",
                   help="continue an interrupted run from its checkpoint (MODEL.pt.ckpt), with its settings")
    f.add_argument("--device", default="auto", choices=DEVICE_CHOICES,
                   help="where to train (auto: CUDA, then Apple MPS, then CPU)")

    i = sub.add_parser("info", help="print a model's card and verify its checksum")
    i.add_argument("model", nargs="?", help="model file (default: the bundled model)")

    m = sub.add_parser("demo", help="denoise the bundled sample and write a before/after PNG")
    m.add_argument("-o", "--output", default="speckle2self_demo", metavar="FOLDER", help="folder to write into")
    _add_run_options(m)

    v = sub.add_parser("live", help="relay an OpenIGTLink image stream, denoised, to OpenIGTLink clients")
    v.add_argument("--source", required=True, type=_endpoint, metavar="HOST:PORT",
                   help="OpenIGTLink server sending IMAGE messages (a PLUS server, a scanner)")
    v.add_argument("--serve", required=True, type=_port, metavar="PORT",
                   help="port on which clients (e.g. Slicer's OpenIGTLinkIF) receive the denoised images")
    v.add_argument("--bind", default="127.0.0.1", type=_host, metavar="HOST",
                   help="address to serve on (default 127.0.0.1: this machine only; 0.0.0.0: every interface)")
    v.add_argument("--max-message-mb", type=_positive_float, default=DEFAULT_MAX_MESSAGE_MB, metavar="MB",
                   help=f"largest OpenIGTLink message accepted from the source, in MiB (default "
                        f"{DEFAULT_MAX_MESSAGE_MB}); a larger one is refused unread and the connection is reopened")
    v.add_argument("--suffix", default="Denoised", help="appended to each input image's name (default Denoised)")
    v.add_argument("--model", metavar="PATH", help="Speckle2Self model file (default: the bundled model)")
    v.add_argument("--device", default="auto", choices=DEVICE_CHOICES,
                   help="where the network runs: auto (CUDA, then Apple MPS, then CPU), cpu, cuda/gpu or mps")
    v.add_argument("--precision", default="auto", choices=("auto", "float32", "float16", "bfloat16"),
                   help="auto: float16 on CUDA or bfloat16 on a CPU with native support (8-bit frames only), each "
                        "kept only if the first frame agrees with float32; else the named precision")
    return p


def _endpoint(text: str) -> tuple[str, int]:
    from .live.igtl_relay import parse_endpoint
    try:
        return parse_endpoint(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port(text: str) -> int:
    from .live.igtl_relay import parse_port
    try:
        return parse_port(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _host(text: str) -> str:
    from .live.igtl_relay import parse_host
    try:
        return parse_host(text)
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


def _whole_at_least(minimum: int):
    """An argparse type: a whole number of at least `minimum`."""
    return _whole_where(lambda v: v >= minimum, f"a whole number of at least {minimum}")


def _whole_from(minimum: int, maximum: int):
    """An argparse type: a whole number from `minimum` to `maximum`."""
    return _whole_where(lambda v: minimum <= v <= maximum, f"a whole number from {minimum} to {maximum}")


def _multiple_of(step: int):
    """An argparse type: a positive whole multiple of `step` (a network's frame multiple)."""
    return _whole_where(lambda v: v >= step and v % step == 0, f"a whole multiple of {step}, such as {8 * step}")


def _whole_where(accept, wanted: str):
    """An argparse type: a whole number that `accept` takes, else an error saying `wanted`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {wanted}, not {text!r}")
        return value
    return parse


def _float_where(accept, wanted: str):
    """An argparse type: a float that `accept` takes, else an error saying `wanted`."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {wanted}, not {text!r}")
        return value
    return parse


_positive_float = _float_where(lambda v: math.isfinite(v) and v > 0, "a positive, finite number")
_fraction = _float_where(lambda v: 0.0 <= v <= 1.0, "a number from 0 to 1")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="PATH", help="Speckle2Self model file (default: the bundled model)")
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES,
                   help="where to run (auto: CUDA, then Apple MPS, then CPU); an absent device is an error")
    p.add_argument("--batch-size", type=_whole_at_least(1), default=None, metavar="N",
                   help="frames per batch (default: 1 on CPU, about 16 megapixels on a GPU)")


def _add_archive_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--skip-existing", action="store_true",
                   help="leave outputs that already exist as they are (resumes an interrupted run: every output "
                        "is written under a temporary name first, so one under its final name is complete)")
    p.add_argument("--report", metavar="FILE.csv|FILE.jsonl", default=None,
                   help="write one line per input: output, status, error, frames, seconds, worker")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="run on a Ray cluster: alone, a local Ray instance on this machine; auto or HOST:PORT, "
                        'a running cluster (needs: pip install "speckle2self[ray]")')
    p.add_argument("--workers", type=_whole_at_least(1), default=None, metavar="N",
                   help="with --ray: model actors to start (default one per GPU, else one per CPU)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; errors become one line on stderr and an exit status (tracebacks with --debug)."""
    args = build_parser().parse_args(argv)
    handler = {"denoise": cmd_denoise, "finetune": cmd_finetune, "info": cmd_info, "demo": cmd_demo,
               "live": cmd_live}[args.command]
    try:
        return handler(args)
    except OutputError as exc:
        return _fail(args, exc, str(exc), EXIT_FILE_FAILED)
    except Speckle2SelfError as exc:
        return _fail(args, exc, str(exc), EXIT_CANNOT_RUN)
    except KeyboardInterrupt:
        print("speckle2self: interrupted; nothing was written for the unfinished file", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: one line for users, the traceback for a report with --debug
        return _fail(args, exc, f"unexpected {type(exc).__name__}: {reason(exc)} (this is a bug; rerun with "
                                "--debug and report the traceback)", EXIT_CANNOT_RUN)


def _fail(args, exc: BaseException, message: str, status: int) -> int:
    if args.debug:
        traceback.print_exception(exc)
    print(f"speckle2self: error: {message}", file=sys.stderr)
    return status


def cmd_denoise(args) -> int:
    from .inference.report_file import check_report_path, write_report
    if args.report:
        check_report_path(args.report)
    if args.ray is not None:
        from .cluster.command import denoise_on_ray
        reports = denoise_on_ray(args)
    else:
        if args.workers is not None:
            raise InputError("--workers sets the model actors of a Ray run; add --ray")
        reports = _denoise_here(args)
    if args.report:
        write_report(args.report, reports)
    return _print_reports(reports)


def _denoise_here(args) -> list:
    from .inference.pipeline import denoise_files
    from .progress import FileBars
    with FileBars() as bars:
        return denoise_files(args.inputs, args.output, model=args.model, device=args.device,
                             batch_size=args.batch_size, domain=args.domain, progress=bars.update,
                             grain_px=args.grain, precision=args.precision, tile_size=args.tile_size,
                             strength=args.strength, skip_existing=args.skip_existing)


def _print_reports(reports) -> int:
    failed = [r for r in reports if not r.ok]
    skipped = [r for r in reports if r.skipped]
    for r in reports:
        if r.skipped:
            print(f"skip   {r.input} -> {r.output}: already there")
        elif r.ok:
            notes = f" ({'; '.join(r.notes)})" if r.notes else ""
            print(f"ok     {r.input} -> {r.output}: {r.frames} frames in {r.seconds:.1f}s{notes}")
        else:
            print(f"FAILED {_failure_line(r.input, r.error or 'failed')}", file=sys.stderr)
    done = len(reports) - len(failed) - len(skipped)
    print(f"{done} of {len(reports)} files denoised" + (f", {len(skipped)} already there" if skipped else ""))
    return EXIT_FILE_FAILED if failed else 0


def _failure_line(path: Path, error: str) -> str:
    """The file and what went wrong, naming the file once (most messages start with it)."""
    return error if error.startswith(str(path)) else f"{path}: {error}"


def cmd_finetune(args) -> int:
    from .finetune.files import checkpoint_for, finetune_files
    from .progress import TrainingBar
    if args.resume:
        print(_resume_decision(args.resume, args.steps))
    stop = _GracefulStop()
    started = time.time()
    try:
        with stop, TrainingBar(args.steps or 0) as bar:
            outcome = finetune_files(args.data, args.output, init=None if args.scratch else args.init,
                                     scratch_preset=args.scratch, steps=args.steps, crop=args.crop,
                                     batch_size=args.batch_size, lr=args.lr, seed=args.seed, domain=args.domain,
                                     resume=args.resume, device=args.device, val_fraction=args.val_fraction,
                                     patience=args.patience, progress=bar.update, should_stop=stop)
    except KeyboardInterrupt:
        print(f"speckle2self: {_abort_message(Path(args.output), checkpoint_for(Path(args.output)), started)}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    if not outcome.sha256:  # a non-zero rank of a torchrun job: rank 0 reports
        return 0
    best = (f"best validation loss {outcome.best_val_loss:.5f}" if outcome.best_val_loss is not None
            else f"best smoothed loss {outcome.best_loss:.5f}")
    print(f"{outcome.stop_reason}: {outcome.steps} steps, {best}; kept the best weights")
    print(f"wrote {outcome.model_path} (sha256 {outcome.sha256})")
    print(f"checkpoint {outcome.checkpoint_path}; loss log {outcome.log_csv}"
          + (f"; curves {outcome.log_png}" if outcome.log_png else ""))
    return 0


def _resume_decision(checkpoint: str, steps: int | None) -> str:
    """What a resumed run will do, said before it starts (its settings come from the checkpoint)."""
    from .training.loop import check_resume_steps, checkpoint_progress
    saved, done = checkpoint_progress(checkpoint)
    total = steps if steps is not None else saved.steps
    check_resume_steps(total, done)
    change = "" if total == saved.steps else f" (the checkpoint's run was to {saved.steps})"
    return (f"resuming {checkpoint} at step {done}: training to {total} steps{change} with its crop "
            f"{saved.crop}, batch size {saved.batch_size}, learning rate {saved.lr:g} and seed {saved.seed}")


def _abort_message(model: Path, checkpoint: Path, started: float) -> str:
    """What a second Ctrl-C leaves behind: the finished model, a resumable checkpoint, or nothing new."""
    def written(path: Path) -> bool:
        return path.is_file() and path.stat().st_mtime >= started - 1.0
    if written(model):
        return f"aborted; the model {model} had already been written and is complete"
    if written(checkpoint):
        return f"aborted before the model was written; continue from the checkpoint with --resume {checkpoint}"
    return "aborted before the first checkpoint; no model or checkpoint was written"


def cmd_info(args) -> int:
    from .networks.model_file import WEIGHTS_KEY, bundled_model_path, checksum_path, load_model
    path = Path(args.model) if args.model else bundled_model_path()
    loaded = load_model(path)
    print(json.dumps(loaded.card, indent=2, sort_keys=True))
    side = checksum_path(path)
    status = f"checksum OK ({side.name})" if side.exists() else f"no checksum file {side.name}"
    inside = ("weights match the checksum in the card" if WEIGHTS_KEY in loaded.card
              else "no weights checksum in the card (an older file)")
    print(f"{path}\nsha256 {loaded.sha256}\n{status}; {inside}")
    return 0


def cmd_demo(args) -> int:
    from .evaluation.demo import run_demo
    summary = run_demo(Path(args.output), model=args.model, device=args.device, batch_size=args.batch_size)
    for line in summary:
        print(line)
    return 0


def cmd_live(args) -> int:
    from .live.igtl_relay import Relay
    say = lambda line: print(f"speckle2self live: {line}", flush=True)  # noqa: E731
    try:
        relay = Relay(args.source, args.serve, model=args.model, device=args.device, precision=args.precision,
                      suffix=args.suffix, bind=args.bind, say=say, max_message_mb=args.max_message_mb)
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
