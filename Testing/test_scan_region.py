"""The scan region is the ultrasound field of view: found from geometry, not from grey levels."""
import numpy as np

from speckle2self.mapping.scan_region import (convex_hull, nearest_inside, nearest_inside_without, sampled_frames,
                                              scan_region)


def _sector_frame(rng, size=(200, 240), dark_wedge=True, text=True):
    """A sector of speckle on black, with a black shadow reaching its edge and burned-in text."""
    rows, cols = np.indices(size)
    apex = (10, size[1] // 2)
    angle = np.arctan2(cols - apex[1], rows - apex[0])
    radius = np.hypot(rows - apex[0], cols - apex[1])
    sector = (np.abs(angle) < 0.6) & (radius < size[0] - 20) & (radius > 5)
    grey = np.where(sector, np.clip(0.5 + 0.15 * rng.standard_normal(size), 0.06, 1.0), 0.0)
    if dark_wedge:  # an acoustic shadow: black from mid-depth to the bottom of the sector
        grey[sector & (np.abs(angle - 0.2) < 0.08) & (radius > 90)] = 0.0
    if text:
        grey[2:8, 5:60:3] = 1.0  # thin text strokes in the corner
    return grey.astype(np.float32), sector


def test_a_shadow_reaching_the_sector_edge_is_inside_the_region():
    grey, sector = _sector_frame(np.random.default_rng(0))
    region = scan_region(grey[None])
    assert region[sector].mean() > 0.99


def test_burned_in_text_is_outside_the_region():
    grey, sector = _sector_frame(np.random.default_rng(1))
    region = scan_region(grey[None])
    assert not region[2:8, 5:60].any()
    assert (region & ~sector).sum() < 0.03 * sector.sum()


def _curved_fan(rng, size=(200, 260), face_radius=60):
    """A curved array's fan: speckle between the probe's face (an arc of `face_radius` about an
    apex above the frame) and the deepest echo, black above the face: the notch at the top."""
    rows, cols = np.indices(size)
    apex = (-face_radius + 10, size[1] // 2)
    angle = np.arctan2(cols - apex[1], rows - apex[0])
    radius = np.hypot(rows - apex[0], cols - apex[1])
    fan = (np.abs(angle) < 0.9) & (radius > face_radius) & (radius < face_radius + 170)
    grey = np.where(fan, np.clip(0.5 + 0.15 * rng.standard_normal(size), 0.06, 1.0), 0.0)
    return grey.astype(np.float32), fan


def test_the_notch_above_a_curved_array_face_is_outside_the_region():
    grey, fan = _curved_fan(np.random.default_rng(5))
    region = scan_region(grey[None])
    notch = np.zeros_like(fan)
    notch[:40, 100:160] = True
    notch &= ~fan
    assert notch.sum() > 400
    assert not region[notch].any()
    assert region[fan].mean() > 0.99


def test_a_shadow_reaching_the_bottom_of_a_curved_fan_stays_inside():
    grey, fan = _curved_fan(np.random.default_rng(6))
    shadow = fan & (np.abs(np.arange(260) - 130) < 10)[None, :] & (np.arange(200) > 120)[:, None]
    grey[shadow] = 0.0
    assert scan_region(grey[None])[shadow].mean() > 0.98  # all but the fan's deepest row, as before the notch rule


def test_bounds_limit_the_region():
    grey, sector = _sector_frame(np.random.default_rng(2))
    bounds = np.zeros(grey.shape, dtype=bool)
    bounds[:100] = True
    region = scan_region(grey[None], bounds)
    assert not region[100:].any() and region[50:100][sector[50:100]].mean() > 0.99


def test_pixels_that_move_in_a_cine_belong_to_the_image_even_when_dark():
    rng = np.random.default_rng(3)
    cine = np.zeros((6, 64, 64), np.float32)
    cine[:, 10:50, 10:50] = 0.019 * rng.integers(0, 2, (6, 40, 40))  # darker than the grey threshold
    region = scan_region(cine)
    assert region[12:48, 12:48].all()


def test_convex_hull_fills_a_sector_and_nothing_outside_it():
    mask = np.zeros((50, 50), dtype=bool)
    mask[10, 25] = mask[40, 10] = mask[40, 40] = True
    hull = convex_hull(mask)
    assert hull[30, 25] and hull[39, 12] and not hull[12, 10] and not hull[45, 25]


def test_nearest_inside_points_every_pixel_into_the_region():
    region = np.zeros((30, 40), dtype=bool)
    region[10:20, 15:25] = True
    rows, cols = nearest_inside(region)
    assert region[rows, cols].all()
    assert (rows[15, 0], cols[15, 0]) == (15, 15)


def test_sampled_frames_spread_over_a_long_cine():
    picks = sampled_frames(1000)
    assert picks[0] == 0 and picks[-1] == 999 and len(picks) <= 64


def _nearest_row_by_row(region):
    """The specification of nearest_inside, one row at a time: the nearest inside column (the left
    one on a tie); rows with none take the nearest row that has some (the upper one on a tie)."""
    h, w = region.shape
    src_c = np.zeros((h, w), int)
    for r in range(h):
        inside = np.nonzero(region[r])[0]
        if inside.size:
            src_c[r] = [inside[np.argmin(np.abs(inside - c))] for c in range(w)]
    with_pixels = np.nonzero(region.any(axis=1))[0]
    src_r = np.array([with_pixels[np.argmin(np.abs(with_pixels - r))] for r in range(h)])
    return np.repeat(src_r[:, None], w, axis=1), src_c[src_r]


def _random_regions(seed, count=60):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        h, w = rng.integers(2, 30, 2)
        region = rng.random((h, w)) < rng.uniform(0.05, 0.8)
        region[rng.random(h) < 0.3] = False
        if region.any():
            yield rng, region


def test_nearest_inside_follows_its_row_by_row_rule():
    for _rng, region in _random_regions(5):
        rows, cols = nearest_inside(region)
        ref_rows, ref_cols = _nearest_row_by_row(region)
        assert np.array_equal(rows, ref_rows) and np.array_equal(cols, ref_cols)


def test_hiding_a_few_pixels_gives_the_same_map_as_starting_again():
    for rng, region in _random_regions(6):
        hidden = rng.random(region.shape) < 0.05
        if not (region & ~hidden).any():
            continue
        rows, cols = nearest_inside_without(region, nearest_inside(region), hidden)
        ref_rows, ref_cols = nearest_inside(region & ~hidden)
        assert np.array_equal(rows, ref_rows) and np.array_equal(cols, ref_cols)
