"""The demo: denoise the bundled simulated cine and show before/after."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..inference.api import denoise, get_model
from ..io import read_volume, write_volume
from .metrics import clip_extremes, psnr, ssim
from ..resources import resource_dirs

SAMPLE_NAME = "phantom_cine.nrrd"
CLEAN_NAME = "phantom_cine_clean.nrrd"


def sample_dir() -> Path:
    for folder in resource_dirs("Samples"):
        if (folder / SAMPLE_NAME).is_file():
            return folder
    raise InputError(f"the bundled sample {SAMPLE_NAME} was not found; reinstall Speckle2Self")


def display_bmode(envelope: np.ndarray, dynamic_range_db: float = 50.0) -> np.ndarray:
    """Log-compress an envelope frame to 8-bit for viewing (0 dB = the frame's maximum)."""
    e = np.maximum(envelope.astype(np.float64), 1e-12)
    db = 20 * np.log10(e / e.max())
    return np.clip(np.rint((db + dynamic_range_db) / dynamic_range_db * 255), 0, 255).astype(np.uint8)


def before_after_png(before: np.ndarray, after: np.ndarray, path: Path) -> None:
    import SimpleITK as sitk
    gap = np.full((before.shape[0], 8), 255, np.uint8)
    sheet = np.hstack([display_bmode(before), gap, display_bmode(after)])
    sitk.WriteImage(sitk.GetImageFromArray(sheet), str(path))


def run_demo(folder: Path, model=None, device: str = "auto", batch_size: int | None = None) -> list[str]:
    """Denoise the sample into `folder`; return lines describing what was done and measured."""
    src = sample_dir() / SAMPLE_NAME
    volume = read_volume(src)
    loaded = get_model(model)
    start = time.monotonic()
    result = denoise(volume.frames, model=loaded, device=device, batch_size=batch_size, domain="envelope")
    seconds = time.monotonic() - start
    folder.mkdir(parents=True, exist_ok=True)
    out = write_volume(folder / "phantom_cine_denoised.nrrd", volume.with_frames(result))
    png = folder / "before_after.png"
    before_after_png(volume.frames[0], result[0], png)
    lines = [f"model {loaded.path.name} (sha256 {loaded.sha256[:12]}…)",
             f"denoised {len(result)} frames of {result.shape[1]}×{result.shape[2]} in {seconds:.2f}s "
             f"({len(result) / seconds:.1f} frames/s)",
             f"wrote {out}", f"wrote {png} (left: input, right: Speckle2Self; 50 dB display)"]
    clean_path = sample_dir() / CLEAN_NAME
    if clean_path.is_file():
        clean = np.sqrt(read_volume(clean_path).frames[0].astype(np.float64))
        ref, before, after = clip_extremes(clean), clip_extremes(volume.frames[0]), clip_extremes(result[0])
        lines.append(f"against the clean phantom: SSIM {ssim(ref, before):.3f} -> {ssim(ref, after):.3f}, "
                     f"PSNR {psnr(ref, before):.2f} -> {psnr(ref, after):.2f} dB")
    return lines
