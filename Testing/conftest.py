"""Shared fixtures: simulated speckle made by the tests, and a tiny model trained by the engine."""
from __future__ import annotations

import numpy as np
import pytest

from speckle2self.networks.model_file import export_model
from speckle2self.networks.network import Architecture
from speckle2self.evaluation.phantoms import make_cine, make_phantom
from speckle2self.training.loop import TrainConfig, train

TINY = Architecture.preset("tiny")


@pytest.fixture(scope="session")
def phantom():
    return make_phantom((128, 128), seed=3)


@pytest.fixture(scope="session")
def cine():
    return make_cine(5, (96, 112), seed=4)


@pytest.fixture(scope="session")
def training_frames():
    return [make_phantom((96, 96), seed=100 + i).envelope.astype(np.float32) for i in range(4)]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, training_frames):
    """A real (briefly trained) tiny log-domain model at the default grain, exported through the engine."""
    result = train(training_frames, TrainConfig(steps=6, batch_size=2, crop=48, seed=1), arch=TINY, device="cpu")
    path = tmp_path_factory.mktemp("models") / "tiny.pt"
    export_model(result.net.denoiser(), result.card("test phantoms"), path)
    return path
