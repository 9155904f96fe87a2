"""Graphics drawn in one flat grey below white (text, depth dots) are found and kept; speckle is not."""
import numpy as np

from speckle2self.inference.api import denoise
from speckle2self.mapping.palette_graphics import palette_graphics, palette_of

TEXT_GREY = 180


def _speckle(level: float, seed: int = 0, size=(128, 160)) -> np.ndarray:
    """8-bit log-compressed Rayleigh speckle about `level` of white (spread ~25 grey levels)."""
    rng = np.random.default_rng(seed)
    grey = np.clip(level + 0.1 * np.log(rng.rayleigh(1.0, size) / 1.25), 0.0, 0.99)
    return np.rint(255 * grey).astype(np.uint8)


def _with_text(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The frame with a few characters' strokes (1-2 px wide) drawn in TEXT_GREY; and their mask."""
    out = frame.copy()
    text = np.zeros(frame.shape, bool)
    for x in (20, 34, 48, 62):
        text[20:32, x] = text[20, x:x + 8] = text[31, x:x + 8] = True   # a "C"-like glyph
        text[20:32, x + 8] = x % 28 == 20                              # every other one closed
    text[40:42, 20:70] = True                                          # an underline, 2 px
    out[text] = TEXT_GREY
    return out, text


def _palette(frame: np.ndarray) -> np.ndarray:
    grey = frame[None].astype(np.float32) / 255.0
    return np.rint(palette_of(grey, np.ones(frame.shape, bool)) * 255).astype(int)


def _mask(frame: np.ndarray) -> np.ndarray:
    grey = frame[None].astype(np.float32) / 255.0
    region = np.ones(frame.shape, bool)
    return palette_graphics(grey, region, palette_of(grey, region))[0]


def test_text_drawn_in_one_grey_over_dark_tissue_is_a_palette_value():
    frame, text = _with_text(_speckle(0.2))
    assert list(_palette(frame)) == [TEXT_GREY]
    assert _mask(frame)[text].all()


def test_the_mask_takes_the_pixel_ring_around_the_strokes_and_no_tissue_beyond():
    frame, text = _with_text(_speckle(0.2))
    mask = _mask(frame)
    ring = np.zeros_like(text)
    ring[19:43, 19:79] = True
    assert mask[~ring].sum() == 0
    assert mask.sum() > text.sum()


def test_speckle_alone_has_no_palette_at_any_brightness():
    for seed, level in enumerate((0.1, 0.3, 0.5, 0.7, 0.9)):
        assert len(_palette(_speckle(level, seed))) == 0, level


def test_a_bright_reflector_clipped_below_white_on_bright_tissue_is_not_a_palette_value():
    frame = _speckle(0.75, seed=4)
    frame[60:63, 10:150] = 250  # a bone surface at a display's ceiling, on tissue about 190
    frame[90:92, 30:120] = 250
    assert len(_palette(frame)) == 0


def test_speckle_enlarged_by_repeating_pixels_has_no_palette():
    frame = np.kron(_speckle(0.5, seed=7, size=(64, 80)), np.ones((2, 2), np.uint8))
    assert len(_palette(frame)) == 0


def test_a_lone_tissue_pixel_of_the_text_grey_is_not_kept():
    frame, text = _with_text(_speckle(0.2))
    frame[100, 100] = TEXT_GREY
    assert not _mask(frame)[100, 100]


def test_no_palette_costs_nothing_and_keeps_nothing():
    grey = _speckle(0.5)[None].astype(np.float32) / 255.0
    assert not palette_graphics(grey, np.ones(grey.shape[1:], bool), np.zeros(0, np.float32)).any()


def test_grey_text_comes_back_bit_for_bit_and_the_tissue_around_it_is_denoised(tiny_model):
    frame, text = _with_text(_speckle(0.3, seed=3))
    out = denoise(frame, model=tiny_model, device="cpu")
    assert np.array_equal(out[text], frame[text])
    tissue = np.zeros_like(text)
    tissue[60:120, 20:150] = True
    assert (out[tissue] != frame[tissue]).mean() > 0.5
    assert not (np.abs(out[tissue].astype(int) - TEXT_GREY) < 20).any()  # no halo of text grey in the tissue
