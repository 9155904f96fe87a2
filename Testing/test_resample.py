"""Resizing by prepared taps gives torch's bilinear interpolation (antialiased when shrinking)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from speckle2self.mapping.resample import Resize


@pytest.mark.parametrize("size_in, size_out", [((64, 96), (64, 55)), ((64, 55), (64, 96)), ((80, 70), (33, 41)),
                                               ((33, 41), (80, 70))])
def test_resize_matches_torch_bilinear(size_in, size_out):
    frames = np.random.default_rng(0).random((2,) + size_in).astype(np.float32)
    shrink = size_out[0] < size_in[0] or size_out[1] < size_in[1]
    expected = F.interpolate(torch.from_numpy(frames)[:, None], size=size_out, mode="bilinear", align_corners=False,
                             antialias=shrink)[:, 0].numpy()
    assert np.allclose(Resize(size_in, size_out)(frames), expected, atol=1e-4)


def test_the_same_size_is_left_as_it_is():
    frames = np.ones((1, 8, 9), np.float32)
    assert Resize((8, 9), (8, 9))(frames) is frames
