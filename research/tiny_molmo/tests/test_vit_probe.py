"""The ViT probe (research.tiny_molmo.vit_probe): its region choice, its classifier on planted signals, and the
clock report on a random ViT."""

from __future__ import annotations

import torch

from molmo.model.config import preset
from molmo.model.molmo import MolmoModel
from research.tiny_molmo.vit_probe import centre_regions, probe_accuracy


def test_shape_probe_takes_the_shaped_region_nearest_the_centre():
    cover = torch.zeros(2, 64, 3)
    cover[:, 0, 0] = 1.0  # a corner patch: region 0
    cover[:, 27, 1] = cover[:, 28, 1] = 1.0  # the middle: region 1
    cover[:, 36, 2] = 0.5  # also in the middle: region 2 (no shape, e.g. a clock hand)
    shapes = torch.tensor([[2, 5, -1], [2, -1, -1]])
    chosen, shape = centre_regions({"regions": cover, "region_shape": shapes}, grid=8)
    assert shape.tolist() == [5, 2]  # view 1: the middle regions have no shape, so the corner object
    assert torch.equal(chosen[0], cover[0, :, 1]) and torch.equal(chosen[1], cover[1, :, 0])


def test_probe_reads_a_planted_signal_and_not_noise():
    gen = torch.Generator().manual_seed(0)
    target = torch.randint(0, 4, (300,), generator=gen)
    noise = torch.randn(300, 16, 8, generator=gen)
    planted = noise.clone()
    planted[torch.arange(300), 5, target] += 8.0  # patch 5 says the class
    assert probe_accuracy(planted, target, n_train=200, classes=4, epochs=150) > 0.9
    assert probe_accuracy(noise, target, n_train=200, classes=4, epochs=150) < 0.5


def test_clock_probe_reports_the_attention_and_both_fixed_poolings(tmp_path, capsys):
    from safetensors.torch import save_file
    from molmo.model.init import init_weights
    from research.tiny_molmo import vit_probe
    donor = MolmoModel(preset("tiny-molmo"))
    init_weights(donor, seed=2)
    save_file({k: v.contiguous() for k, v in donor.vision.vit.state_dict().items()}, str(tmp_path / "vit.safetensors"))
    assert vit_probe.main(["clocks", "--vit", str(tmp_path / "vit.safetensors"), "--train", "12", "--test", "6"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name in ("trained", "random"):
        at = next(i for i, line in enumerate(lines) if f"{name} ViT, probe test accuracy" in line)
        assert "the mean over all patches: " in lines[at + 1]
        assert "the mean over the hour hand's patches: " in lines[at + 2]
