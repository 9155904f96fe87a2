"""Property-based (Hypothesis) tests: whatever array or file comes in, denoise() and the readers
either give a sound result or raise one of the project's errors; never a wrong result, never a raw
library exception. Seeded (derandomize) and bounded, so they run the same, and fast, everywhere."""
import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from speckle2self.errors import Speckle2SelfError
from speckle2self.inference.api import denoise
from speckle2self.io import Volume, read_dicom, read_volume, write_volume

SETTINGS = dict(derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DTYPES = [np.uint8, np.int8, np.uint16, np.int16, np.int32, np.int64, np.float16, np.float32, np.float64]
SCALES = [1e-30, 1e-6, 1.0, 255.0, 1e4, 1e9, 1e18, 1e30, 1e300]


def make_frames(seed: int) -> np.ndarray:
    """Speckle-like frames of any dtype, size, scale and sign; sometimes with NaN or Inf, constant, or
    too small. Every choice comes from `seed`, so the cases spread evenly over these kinds (drawing
    each choice from Hypothesis would favour its simplest values: tiny and constant frames)."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(DTYPES[rng.integers(len(DTYPES))])
    shape = tuple(int(v) for v in rng.integers(8, 48, 2))
    if rng.random() < 0.05:
        shape = (int(rng.integers(1, 8)), shape[1])
    if rng.random() < 0.5:
        shape = (int(rng.integers(1, 4)),) + shape
    sign = rng.choice([1.0, -1.0])
    if np.issubdtype(dtype, np.integer):  # a fraction of the type's range, anywhere in it
        info = np.iinfo(dtype)
        span = float(info.max) - float(info.min)
        scale, offset = span * rng.choice([1e-4, 0.01, 0.05]), info.min + span * rng.choice([0.0, 0.3, 0.5, 0.9])
    else:
        scale = SCALES[rng.integers(len(SCALES))]
        offset = rng.choice([0.0, 0.5, -3.0]) * scale
    values = sign * rng.rayleigh(1.0, shape) * scale + offset
    if np.issubdtype(dtype, np.integer):
        values = np.clip(np.rint(values), info.min, info.max)
    with np.errstate(over="ignore"):
        frames = values.astype(dtype)
    if dtype.kind == "f" and rng.random() < 0.2:
        frames[tuple(int(rng.integers(n)) for n in shape)] = rng.choice([np.nan, np.inf, -np.inf])
    if rng.random() < 0.05:
        frames[...] = frames.flat[0]
    return frames


def _check_denoise(frames, model):
    before = frames.copy()
    try:
        out = denoise(frames, model=model, device="cpu")
    except Speckle2SelfError:
        assert np.array_equal(frames, before, equal_nan=frames.dtype.kind == "f")
        return
    assert out.shape == frames.shape and out.dtype == frames.dtype
    assert np.isfinite(out).all()
    assert out.min() >= frames.min() and out.max() <= frames.max()
    assert np.array_equal(frames, before)


@settings(max_examples=40, **SETTINGS)
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_denoise_with_the_bundled_model_gives_a_sound_result_or_our_error(seed):
    _check_denoise(make_frames(seed), None)


@settings(max_examples=40, **SETTINGS)
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_denoise_with_an_envelope_model_gives_a_sound_result_or_our_error(seed, tiny_model):
    _check_denoise(make_frames(seed), tiny_model)


@pytest.fixture(scope="module")
def real_files(tmp_path_factory):
    """Small real files of every format the readers take (written by the engine, and a pydicom file)."""
    from pydicom.data import get_testdata_file
    folder = tmp_path_factory.mktemp("real")
    rng = np.random.default_rng(7)
    stack = (rng.rayleigh(1.0, (2, 24, 20)) * 40).astype(np.uint8)
    files = {}
    for suffix in (".nrrd", ".mha", ".nii", ".nii.gz", ".tif"):
        files[suffix] = write_volume(folder / f"real{suffix}", Volume(stack)).read_bytes()
    files[".png"] = write_volume(folder / "real.png", Volume(stack[:1], single_frame=True)).read_bytes()
    files[".dcm"] = open(get_testdata_file("US1_RLE.dcm") or get_testdata_file("CT_small.dcm"), "rb").read()
    return files


def _read(path):
    return read_dicom(path).volume if path.suffix == ".dcm" else read_volume(path)


def _check_reader(path):
    try:
        volume = _read(path)
    except Speckle2SelfError:
        return
    assert volume.frames.ndim == 3 and volume.frames.dtype.kind in "uif"


SUFFIXES = [".nrrd", ".mha", ".nii", ".nii.gz", ".tif", ".png", ".dcm"]


@settings(max_examples=40, **SETTINGS)
@given(suffix=st.sampled_from(SUFFIXES), fraction=st.floats(0.0, 1.0), flips=st.lists(st.floats(0.0, 1.0), max_size=3))
def test_truncated_or_damaged_real_files_read_or_give_our_error(real_files, tmp_path_factory, suffix, fraction, flips):
    data = bytearray(real_files[suffix][:int(len(real_files[suffix]) * fraction)])
    for where in flips:
        if data:
            data[min(int(where * len(data)), len(data) - 1)] ^= 0x5A
    path = tmp_path_factory.mktemp("damaged") / f"file{suffix}"
    path.write_bytes(bytes(data))
    _check_reader(path)


@settings(max_examples=20, **SETTINGS)
@given(suffix=st.sampled_from(SUFFIXES), data=st.binary(max_size=600))
def test_random_bytes_give_our_error(tmp_path_factory, suffix, data):
    path = tmp_path_factory.mktemp("random") / f"file{suffix}"
    path.write_bytes(data)
    _check_reader(path)
