"""The method's building blocks: perturbation, network shapes, losses."""
import numpy as np
import pytest
import torch

from speckle2self.errors import InputError
from speckle2self.training.losses import LossWeights, speckle2self_loss
from speckle2self.networks.network import Architecture, Speckle2SelfNet
from speckle2self.training.perturb import multiscale_views, perturb


def _smooth_and_speckle(shape=(128, 128), seed=0):
    from speckle2self.evaluation.phantoms import Probe, speckle_envelope
    z = np.linspace(0, 1, shape[0])[:, None] * np.ones(shape)
    structure = 0.5 + 0.4 * np.sin(2 * np.pi * z)  # slow depth profile
    speckle = speckle_envelope(structure, np.random.default_rng(seed), Probe())
    return torch.from_numpy(structure)[None, None].float(), torch.from_numpy(speckle)[None, None].float()


def test_msp_changes_the_speckle_pattern():
    _, x = _smooth_and_speckle()
    view = perturb(x, 0.5)
    residual_in = (x - torch.nn.functional.avg_pool2d(x, 9, 1, 4))
    residual_view = (view - torch.nn.functional.avg_pool2d(view, 9, 1, 4))
    corr = np.corrcoef(residual_in.flatten().numpy(), residual_view.flatten().numpy())[0, 1]
    assert corr < 0.9, f"speckle grain should change between scales, correlation {corr:.2f}"


def test_msp_keeps_smooth_structure():
    structure, _ = _smooth_and_speckle()
    for scale in (0.25, 0.5):
        view = perturb(structure, scale)
        assert torch.allclose(view[..., 8:-8, :], structure[..., 8:-8, :], atol=0.02)


def test_full_scale_view_is_the_input():
    _, x = _smooth_and_speckle()
    views = multiscale_views(x, (0.25, 0.5, 1.0))
    assert len(views) == 3 and views[-1] is x
    assert all(v.shape == x.shape for v in views)


def test_network_gives_one_output_per_scale_with_input_shape():
    net = Speckle2SelfNet(Architecture.preset("tiny"))
    x = torch.rand(2, 1, 64, 48)
    outs = net(multiscale_views(x, net.arch.scales))
    assert [o.shape for o in outs] == [x.shape] * 3


def test_denoiser_accepts_sizes_that_are_not_multiples_and_clamps():
    den = Speckle2SelfNet(Architecture.preset("tiny")).denoiser().eval()
    with torch.no_grad():
        y = den(torch.rand(1, 1, 37, 50) * 5)
    assert y.shape == (1, 1, 37, 50)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


@pytest.mark.parametrize("kwargs, message", [
    ({"scales": (0.25, 0.5)}, "largest scale must be 1.0"),
    ({"scales": (0.0, 1.0)}, "scales must lie in (0, 1]"),
    ({"widths": ()}, "widths must be positive"),
    ({"upsample": "bicubic"}, "upsample must be 'bilinear' or 'nearest'"),
])
def test_architecture_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        Architecture(**kwargs)


def test_cards_written_before_bilinear_upsampling_rebuild_nearest_decoders():
    old_card = {k: v for k, v in Architecture().to_dict().items() if k != "upsample"}
    assert Architecture.from_dict(old_card).upsample == "nearest"
    assert Architecture.from_dict(Architecture().to_dict()).upsample == "bilinear"


def test_unknown_preset_is_named():
    with pytest.raises(ValueError, match="unknown width preset 'huge'"):
        Architecture.preset("huge")


def test_loss_terms_follow_their_definitions():
    a, b, x = torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 4, 4), torch.full((1, 1, 4, 4), 0.5)
    total, terms = speckle2self_loss([a, b], [x, x], LossWeights(reconstruction=1.0, consistency=2.0))
    assert terms["reconstruction"] == pytest.approx(0.25 + 0.25)
    assert terms["consistency"] == pytest.approx(1.0)
    assert float(total) == pytest.approx(0.5 + 2.0)



def test_l1_reconstruction_follows_its_definition_and_keeps_the_other_terms():
    a, x = torch.zeros(1, 1, 4, 4), torch.full((1, 1, 4, 4), 0.5)
    _, terms = speckle2self_loss([a], [x], LossWeights(reconstruction_norm="l1"))
    assert terms["reconstruction"] == pytest.approx(0.5)
    assert speckle2self_loss([a], [x], LossWeights())[1]["reconstruction"] == pytest.approx(0.25)


def test_l1_reconstruction_picks_a_side_of_an_uncertain_edge_where_mse_averages_them():
    # The same crop seen with its edge at one of two places: MSE's best single answer is the
    # average of both (a ramp, a blur); L1's is either side (a step).
    step = torch.zeros(1, 1, 1, 8)
    step[..., 4:] = 1.0
    early = torch.roll(step, -1, dims=-1)
    early[..., -1] = 1.0
    targets = [step, step, early]
    results = {}
    for norm in ("mse", "l1"):
        y = torch.nn.Parameter(torch.full((1, 1, 1, 8), 0.5))
        opt = torch.optim.Adam([y], lr=0.05)
        for _ in range(400):
            opt.zero_grad()
            sum(speckle2self_loss([y], [t], LossWeights(reconstruction_norm=norm))[0] for t in targets).backward()
            opt.step()
        results[norm] = y.detach()[0, 0, 0, 3]
    assert results["mse"] == pytest.approx(1 / 3, abs=0.02)
    assert results["l1"] == pytest.approx(0.0, abs=0.05)


def _smooth_with_fine_detail():
    rows = torch.linspace(0, 1, 64)[:, None] * torch.ones(64, 64)
    smooth = (0.4 + 0.2 * rows)[None, None]
    checker = ((torch.arange(64)[:, None] + torch.arange(64)) % 2).float()  # 1-px detail
    return smooth, smooth + 0.1 * (checker - 0.5)


def test_matched_consistency_lets_full_resolution_keep_detail_a_coarse_view_cannot_carry():
    smooth, detailed = _smooth_with_fine_detail()  # outputs for scales 0.25 and 1.0
    full = speckle2self_loss([smooth, detailed], [smooth, smooth], LossWeights())[1]["consistency"]
    matched = speckle2self_loss([smooth, detailed], [smooth, smooth], LossWeights(consistency_band="matched"),
                                scales=(0.25, 1.0))[1]["consistency"]
    assert full == pytest.approx(0.05, rel=0.01)
    assert matched < 0.1 * full


def test_matched_consistency_still_holds_scales_to_the_same_anatomy():
    smooth, _ = _smooth_with_fine_detail()
    brighter = smooth + 0.1  # a disagreement every view can see
    matched = speckle2self_loss([smooth, brighter], [smooth, smooth], LossWeights(consistency_band="matched"),
                                scales=(0.25, 1.0))[1]["consistency"]
    assert matched == pytest.approx(0.1, rel=0.05)


def test_matched_consistency_needs_one_scale_per_output_and_a_known_band():
    smooth, _ = _smooth_with_fine_detail()
    with pytest.raises(InputError, match="2 outputs but 3 scales"):
        speckle2self_loss([smooth, smooth], [smooth, smooth], LossWeights(consistency_band="matched"),
                          scales=(0.25, 0.5, 1.0))
    with pytest.raises(InputError, match="needs the scales"):
        speckle2self_loss([smooth, smooth], [smooth, smooth], LossWeights(consistency_band="matched"))
    with pytest.raises(InputError, match="consistency_band must be 'full' or 'matched'"):
        LossWeights(consistency_band="coarse")


def test_an_unknown_reconstruction_norm_is_named():
    with pytest.raises(InputError, match="reconstruction_norm must be 'mse' or 'l1'"):
        LossWeights(reconstruction_norm="L2")


def test_a_full_resolution_skip_starts_as_the_parent_model():
    torch.manual_seed(0)
    parent = Speckle2SelfNet(Architecture.preset("tiny"))
    child = Speckle2SelfNet(Architecture.preset("tiny", full_res_skip=True))
    child.load_denoiser_weights(parent.denoiser().state_dict())
    x = torch.rand(2, 1, 48, 80)
    assert torch.equal(child.denoiser()(x), parent.denoiser()(x))


def test_the_full_resolution_skip_reaches_the_output_and_the_card():
    torch.manual_seed(0)
    net = Speckle2SelfNet(Architecture.preset("tiny", full_res_skip=True))
    torch.nn.init.normal_(net.encoders[-1].stem.weight, std=0.5)
    x = torch.rand(1, 1, 32, 32)
    before = net.denoiser()(x)
    x[0, 0, 16, 16] += 0.5
    changed = (net.denoiser()(x) - before).abs()[0, 0]
    assert changed[16, 16] > 0
    scripted = torch.jit.script(net.denoiser().eval())
    assert torch.allclose(scripted(x), net.denoiser()(x))
    assert Architecture.from_dict(net.arch.to_dict()).full_res_skip
    assert not Architecture.from_dict({"widths": [8, 16], "scales": [1.0]}).full_res_skip


def test_with_re_speckling_the_local_mean_term_asks_for_the_clean_estimate_not_the_respeckled_input():
    torch.manual_seed(0)
    clean = torch.full((1, 1, 32, 32), 0.5)
    noisy = clean + 0.05 * torch.randn(1, 1, 32, 32)
    respeckled = noisy + 0.3 * torch.randn(1, 1, 1, 1).expand(1, 1, 32, 32)  # a coarse synthetic offset
    weights = LossWeights(reconstruction=0.0, consistency=0.0, local_mean=1.0, respeckle=1.0)
    implied_by = lambda y: speckle2self_loss([y], [noisy], weights, [respeckled])[1]["local_mean"]  # noqa: E731
    estimate = 2 * noisy - respeckled  # (y + w) / 2 = noisy: what Noisier2Noise makes of the clean image
    assert implied_by(estimate) < 1e-10
    assert implied_by(respeckled) > 1e-3


@pytest.mark.parametrize("fold", [2, 4])
def test_a_folded_network_runs_no_convolution_at_full_resolution_and_keeps_the_frame_size(fold):
    arch = Architecture(widths=(8, 16), scales=(0.5, 1.0), full_res_skip=True, space_to_depth=fold)
    net = Speckle2SelfNet(arch).eval()
    sizes = []
    hooks = [m.register_forward_hook(lambda _m, inputs, _out: sizes.append(tuple(inputs[0].shape[-2:])))
             for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    x = torch.rand(1, 1, 45, 70)
    y = net.denoiser()(x)
    for hook in hooks:
        hook.remove()
    padded = -(-45 // arch.multiple) * arch.multiple
    assert y.shape == x.shape and max(h for h, _ in sizes) == padded // fold  # the finest convolution
    scripted = torch.jit.script(net.denoiser())
    assert torch.allclose(scripted(x), y, atol=1e-6)
    assert [v.shape for v in net([x[..., :32, :64]] * 2)] == [(1, 1, 32, 64)] * 2
    assert Architecture.from_dict(arch.to_dict()) == arch and arch.multiple == 4 * fold


def test_fold_factor_is_checked_and_older_cards_have_none():
    with pytest.raises(ValueError, match="space_to_depth must be 1, 2 or 4"):
        Architecture(space_to_depth=3)
    assert Architecture.from_dict({"widths": [8, 16], "scales": [1.0]}).space_to_depth == 1
