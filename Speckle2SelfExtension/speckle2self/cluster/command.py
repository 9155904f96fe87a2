"""`speckle2self denoise --ray`: the command line's arguments to a cluster run with progress."""
from __future__ import annotations

from ..inference.pipeline import FileReport
from .connect import LOCAL
from .driver import denoise_files_ray
from .progress import ArchiveProgress


def denoise_on_ray(args) -> list[FileReport]:
    """Run `denoise` with the parsed `args` on Ray (args.ray: "local", "auto" or HOST:PORT)."""
    with ArchiveProgress() as progress:
        return denoise_files_ray(args.inputs, args.output, address=None if args.ray == LOCAL else args.ray,
                                 workers=args.workers, model=args.model, device=args.device,
                                 batch_size=args.batch_size, domain=args.domain, grain_px=args.grain,
                                 precision=args.precision, tile_size=args.tile_size, strength=args.strength,
                                 skip_existing=args.skip_existing, on_file=progress)
