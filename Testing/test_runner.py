"""Out-of-memory back-off: the part of GPU handling that does not need a GPU to check.

`run_halving` receives the batch runner as a function; here the runner raises the same error
class PyTorch raises on a full GPU whenever it is given more than the frames that "fit".
"""
import numpy as np
import pytest
import torch

from speckle2self.inference.runner import is_out_of_memory, run_halving

OOM = getattr(torch.cuda, "OutOfMemoryError", RuntimeError)


def _runner(fits: int, calls: list):
    def run(batch):
        calls.append(len(batch))
        if len(batch) > fits:
            raise OOM("CUDA out of memory. Tried to allocate 2.00 GiB")
        return batch * 2
    return run


def test_batch_is_halved_until_it_fits_and_results_stay_in_order():
    calls = []
    batch = np.arange(8, dtype=np.float32).reshape(8, 1, 1)
    out, size = run_halving(_runner(2, calls), batch, shrink_tile=lambda: False)
    assert np.array_equal(out, batch * 2)
    assert calls == [8, 4, 2, 2, 2, 2] and size == 2


def test_the_size_that_worked_is_used_from_the_start_next_time():
    calls = []
    run_halving(_runner(2, calls), np.zeros((4, 1, 1), np.float32), shrink_tile=lambda: False, limit=2)
    assert calls == [2, 2]


def test_when_one_frame_does_not_fit_tiles_shrink_then_the_error_surfaces():
    shrinks = []
    with pytest.raises(RuntimeError, match="out of memory"):
        run_halving(_runner(0, []), np.zeros((1, 4, 4), np.float32),
                    shrink_tile=lambda: len(shrinks) < 2 and not shrinks.append(1))
    assert len(shrinks) == 2


def test_other_errors_are_not_mistaken_for_memory_errors():
    def broken(batch):
        raise RuntimeError("shape mismatch")
    with pytest.raises(RuntimeError, match="shape mismatch"):
        run_halving(broken, np.zeros((4, 2, 2), np.float32), shrink_tile=lambda: True)
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory"))
