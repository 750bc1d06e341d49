"""Dense vision pre-training: labels land on the right patches, the stage trains and its ViT loads into a
from-scratch model (`TrainConfig.init_vit`)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from molmo.data.generators import generate_one
from molmo.model.config import preset
from molmo.model.molmo import MolmoModel
from molmo.train import checkpointing
from molmo.train.config import ConfigError
from molmo.train.setup import load_vit
from molmo.data.generators.clocks import hand_angles
from molmo.data.generators.scenes import SHAPES
from molmo.train.vision_labels import COLOUR_NAMES, MAX_REGIONS, PARTS, scene_labels, view_labels
from molmo.train.vision_pretrain import (COUNT_OUTPUTS, IMAGE_OUTPUTS, MIN_REGION_COVER, PATCH_OUTPUTS,
                                         REGION_OUTPUTS, TIME_OUTPUTS, DenseViews, VisionPretrainConfig, dense_loss,
                                         preprocessor_for_model, sincos_positions, train_vision)


def test_object_centres_and_colours_land_on_their_patches():
    item = generate_one("points", 3, 5)
    labels = scene_labels(item)
    w, h = item.image.size
    t = view_labels(labels, (0, 0, w, h), grid=8)
    for obj in item.scene["objects"]:
        x, y = obj["point"]
        patch = int(y / h * 8) * 8 + int(x / w * 8)
        assert t["centre"][patch] == 1
    assert t["centre"].sum() <= len(item.scene["objects"])
    covered = t["colour"].sum(-1) > 0
    assert np.array_equal(covered, t["part"][:, PARTS.index("object")] > 0)


def test_letterbox_padding_and_crops_shift_the_labels():
    item = generate_one("points", 3, 6)
    labels = scene_labels(item)
    w, h = item.image.size
    padded = view_labels(labels, (0, 0, w, h), grid=8, pad=(0.0, 0.25, 0.0, 0.25))
    assert padded["part"].reshape(8, 8, -1)[:2].sum() == 0 and padded["part"].reshape(8, 8, -1)[-2:].sum() == 0
    x, y = item.scene["objects"][0]["point"]
    crop = view_labels(labels, (x - 20, y - 20, x + 20, y + 20), grid=8)
    assert crop["centre"].reshape(8, 8)[4, 4] == 1  # the object now sits in the middle of the view


def test_clock_hands_and_bar_values_are_labelled():
    clock = scene_labels(generate_one("clocks", 1, 0))
    assert 0 <= clock.hour < 12 and 0 <= clock.minute < 60
    for part in ("clock_face", "hour_hand", "minute_hand"):
        assert (clock.part == 1 + PARTS.index(part)).any(), part
    bars = generate_one("docs", 1, 0, doc_kind="bar")
    labels = scene_labels(bars)
    values = labels.value[np.isfinite(labels.value)]
    assert values.size and values.min() > 0 and values.max() <= 1
    assert (labels.part == 1 + PARTS.index("bar")).sum() == np.isfinite(labels.value).sum()


def test_stage_trains_and_its_vit_initialises_a_model(tmp_path):
    cfg = VisionPretrainConfig(steps=3, images_per_step=2, views_per_image=2, workers=0, out_dir=str(tmp_path),
                               log_every=1, region_weight=1.0)
    path = train_vision(cfg)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3 and all(np.isfinite(json.loads(x)["loss"]) for x in lines)
    model = MolmoModel(preset("tiny-molmo"))
    before = {k: v.clone() for k, v in model.vision.vit.state_dict().items()}
    load_vit(model, path)
    after = model.vision.vit.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    with pytest.raises(ConfigError, match="does not fit"):
        load_vit(MolmoModel(preset("tiny-qwen2")), path)


@pytest.mark.slow  # 20-50 s of training on 2 loaded cores: the full suite (-m "slow or not slow") runs it
def test_an_interrupted_stage_resumes_its_step_weights_and_optimizer(tmp_path):
    cfg = VisionPretrainConfig(steps=4, images_per_step=1, views_per_image=2, workers=0, out_dir=str(tmp_path),
                               log_every=1, save_every=2)
    train_vision(dataclasses.replace(cfg, steps=2))  # a first run, then the same run with more steps
    saved = load_file(str(tmp_path / "vit.safetensors"))
    with open(tmp_path / "metrics.jsonl", "a") as log:  # as if killed after logging a step it never saved
        log.write(json.dumps({"step": 2, "loss": 0.0}) + "\n")
    train_vision(cfg)
    steps = [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 1, 2, 3]  # the second run went on from step 2 and appended to the log
    assert checkpointing.latest(tmp_path).name == "step_0000004"
    final = load_file(str(tmp_path / "vit.safetensors"))
    assert any(not torch.equal(saved[k], final[k]) for k in saved)


@pytest.mark.slow  # 20-50 s of training on 2 loaded cores: the full suite (-m "slow or not slow") runs it
def test_a_checkpoint_from_before_the_count_head_resumes(tmp_path, monkeypatch):
    """Runs saved before `DenseHeads.counts` and `.time` existed go on; any other missing parameter is still an
    error."""
    from molmo.train import vision_pretrain
    cfg = VisionPretrainConfig(steps=2, images_per_step=1, views_per_image=2, workers=0, out_dir=str(tmp_path),
                               log_every=1, save_every=1)
    old_init = vision_pretrain.DenseHeads.__init__

    def without_counts(self, dim):
        old_init(self, dim)
        del self.counts, self.time

    def without_counts_forward(self, feats, regions):
        x = self.norm(feats)
        later_heads = torch.zeros(*x.shape[:2], COUNT_OUTPUTS[0][1] + TIME_OUTPUTS[0][1])
        return (torch.cat([self.patch(x), later_heads], -1),
                self.image(vision_pretrain.attention_pool(self.pool, x).flatten(1)),
                self.region(vision_pretrain.region_means(x, regions)))

    with monkeypatch.context() as m:  # an older DenseHeads: no count head, and a forward that does not use it
        m.setattr(vision_pretrain.DenseHeads, "__init__", without_counts)
        m.setattr(vision_pretrain.DenseHeads, "forward", without_counts_forward)
        train_vision(cfg)
    train_vision(dataclasses.replace(cfg, steps=3))
    assert checkpointing.latest(tmp_path).name == "step_0000003"
    model = torch.nn.Linear(2, 2)
    with pytest.raises(RuntimeError, match="missing"):
        checkpointing.resume(tmp_path, torch.nn.ModuleDict({"other": model}), torch.optim.AdamW(model.parameters()))


def test_object_crops_centre_a_whole_object_hand_or_bar():
    tiny_vit_grid = 8
    mcfg = preset("tiny-molmo")
    cfg = VisionPretrainConfig(sources=(("points", 1.0, {}), ("clocks", 1.0, {}), ("docs", 1.0, {"doc_kind": "bar"})),
                               views_per_image=3, object_crops=1.0, seed=5)
    views = iter(DenseViews(cfg, preprocessor_for_model(mcfg), tiny_vit_grid))
    crops = [v for i, v in zip(range(60), views) if i % 3]  # view 0 of each image is the global view
    centre = (tiny_vit_grid - 1) / 2
    for v in crops:
        cover = v["regions"].reshape(tiny_vit_grid, tiny_vit_grid, -1)
        rows, cols = np.arange(tiny_vit_grid)[:, None, None], np.arange(tiny_vit_grid)[None, :, None]
        mass = cover.sum((0, 1))
        shown = mass >= MIN_REGION_COVER  # enough of the region to get a target
        cy = (cover * rows).sum((0, 1))[shown] / mass[shown]
        cx = (cover * cols).sum((0, 1))[shown] / mass[shown]
        assert np.hypot(cy - centre, cx - centre).min() < 3  # some region sits near the middle of the view


def test_hand_directions_point_from_the_clock_centre_along_the_hands():
    item = generate_one("clocks", 1, 2, difficulty="easy")
    labels = scene_labels(item)
    w, h = item.image.size
    t = view_labels(labels, (0, 0, w, h), grid=8, pad=(0.0, 0.0, 0.0, 0.0))
    cx, cy = item.scene["centre"]
    for k, name in enumerate(("hour_hand", "minute_hand")):
        on = np.isfinite(t["hands"][:, 2 * k])
        assert on.any() and np.array_equal(on, t["part"][:, PARTS.index(name)] > 0)
        sin, cos = t["hands"][on][0, 2 * k:2 * k + 2]
        # the hand's patches lie on the side of the centre that the target direction names
        py, px = np.divmod(np.flatnonzero(on), 8)
        dx, dy = ((px + 0.5) / 8 * w - cx).mean(), ((py + 0.5) / 8 * h - cy).mean()
        assert dx * sin - dy * cos > 0, name  # image y grows downwards; 12 o'clock is -y


def test_every_clock_face_patch_says_the_time_and_nothing_else_does():
    item = generate_one("clocks", 1, 2, difficulty="easy")
    labels = scene_labels(item)
    w, h = item.image.size
    t = view_labels(labels, (0, 0, w, h), grid=8, pad=(0.0, 0.0, 0.0, 0.0))
    on = np.isfinite(t["face_time"][:, 0])
    hands = (t["part"][:, PARTS.index("hour_hand")] > 0) | (t["part"][:, PARTS.index("minute_hand")] > 0)
    assert on[hands].all() and 8 < on.sum() < 64  # the face and its hands, not the background corners
    hour, minute, _ = hand_angles(item.scene["hour"], item.scene["minute"], item.scene["second"])
    expected = [f(np.radians(a)) for a in (hour, minute) for f in (np.sin, np.cos)]
    assert np.allclose(t["face_time"][on], expected, atol=1e-6)  # the same time on every face patch
    cx, cy, r = *item.scene["centre"], item.scene["radius"]
    rim = view_labels(labels, (cx - r, cy - r, cx - 0.4 * r, cy - 0.4 * r), grid=8)  # the face's top-left, no hands
    assert rim["part"][:, PARTS.index("clock_face")].sum() > 0 and np.isnan(rim["face_time"]).all()
    points = generate_one("points", 3, 5)
    assert np.isnan(view_labels(scene_labels(points), (0, 0, *points.image.size), grid=8)["face_time"]).all()


def test_bar_letters_run_left_to_right_and_counts_follow_the_view():
    item = generate_one("docs", 1, 3, doc_kind="bar", difficulty="easy")
    t = view_labels(scene_labels(item), (0, 0, *item.image.size), grid=8, pad=(0.0, 0.0, 0.0, 0.0))
    letters = t["bar"].reshape(8, 8, -1).argmax(-1)[t["bar"].reshape(8, 8, -1).sum(-1) > 0.5]
    cols = np.nonzero(t["bar"].reshape(8, 8, -1).sum(-1) > 0.5)[1]
    order = letters[np.argsort(cols, kind="stable")]
    assert len(set(order)) >= 2 and np.all(np.diff(order) >= 0)  # A, B, C ... from left to right

    points = generate_one("points", 3, 5)
    labels = scene_labels(points)
    w, h = points.image.size
    full = view_labels(labels, (0, 0, w, h), grid=8, pad=(0.0, 0.0, 0.0, 0.0))
    assert int(full["count"]) == min(len(points.scene["objects"]), 15)
    x, y = points.scene["objects"][0]["point"]
    crop = view_labels(labels, (x - 10, y - 10, x + 10, y + 10), grid=8)
    inside = sum(abs(o["point"][0] - x) < 10 and abs(o["point"][1] - y) < 10 for o in points.scene["objects"])
    assert int(crop["count"]) == inside >= 1
    assert np.isnan(crop["position"]).all() and np.isfinite(full["position"]).all()
    gx, gy = full["position"].reshape(8, 8, 2).transpose(2, 0, 1)
    assert np.all(np.diff(gx, axis=1) > 0) and np.all(np.diff(gy, axis=0) > 0)
    assert np.isclose(gx[0, 0], 1 / 16) and np.isclose(gy[-1, -1], 15 / 16)
    has = np.isfinite(full["offset"][:, 0])
    assert np.array_equal(has, full["centre"] > 0) and ((full["offset"][has] >= 0) & (full["offset"][has] < 1)).all()


def test_every_patch_gets_the_views_counts_per_colour_and_shape():
    points = generate_one("points", 3, 5)
    labels = scene_labels(points)
    w, h = points.image.size
    objects = points.scene["objects"]
    full = view_labels(labels, (0, 0, w, h), grid=8)["attribute_counts"]
    for k, colour in enumerate(COLOUR_NAMES):
        assert full[k] == sum(o["colour"] == colour for o in objects)
    for k, shape in enumerate(SHAPES):
        assert full[len(COLOUR_NAMES) + k] == sum(o["shape"] == shape for o in objects)
    left = view_labels(labels, (0, 0, w / 2, h), grid=8)["attribute_counts"]  # only the centres the view shows
    assert left[:len(COLOUR_NAMES)].sum() == sum(o["point"][0] < w / 2 for o in objects) < len(objects)
    clock = generate_one("clocks", 1, 0)
    assert np.isnan(view_labels(scene_labels(clock), (0, 0, *clock.image.size), grid=8)["attribute_counts"]).all()

    views = [view_labels(labels, (0, 0, w, h), 8), view_labels(scene_labels(clock), (0, 0, 300, 300), 8)]
    batch = {k: torch.from_numpy(np.stack([v[k] for v in views])) for k in views[0]}
    batch["time"] = torch.full((2, 2), -1)
    patch = torch.zeros(2, 64, sum(w for _, w in PATCH_OUTPUTS + COUNT_OUTPUTS + TIME_OUTPUTS))
    image, region = torch.zeros(2, sum(w for _, w in IMAGE_OUTPUTS)), torch.zeros(2, MAX_REGIONS, 3 + len(SHAPES))
    losses = dense_loss(patch, image, region, batch)[1]
    assert losses["attribute_counts"] > 0 and losses["face_time"] > 0
    counts = slice(sum(w for _, w in PATCH_OUTPUTS), sum(w for _, w in PATCH_OUTPUTS + COUNT_OUTPUTS))
    patch[0, :, counts] = batch["attribute_counts"][0] / 4  # right on every patch; the clock has no target
    patch[1, :, -TIME_OUTPUTS[0][1]:] = torch.nan_to_num(batch["face_time"][1])  # and the clock's time
    losses = dense_loss(patch, image, region, batch)[1]
    assert losses["attribute_counts"] == 0 and losses["face_time"] == 0


def test_regions_cover_each_object_hand_and_bar_with_its_own_target():
    points = generate_one("points", 3, 5)
    labels = scene_labels(points)
    w, h = points.image.size
    t = view_labels(labels, (0, 0, w, h), grid=8, pad=(0.0, 0.0, 0.0, 0.0))
    objects = points.scene["objects"]
    for i, obj in enumerate(objects[:MAX_REGIONS]):
        assert SHAPES[t["region_shape"][i]] == obj["shape"]
        x, y = obj["point"]
        assert t["regions"][int(y / h * 8) * 8 + int(x / w * 8), i] > 0  # the object's own patch is in its region
    assert (t["region_shape"][len(objects):] == -1).all() and not t["regions"][:, len(objects):].any()
    assert np.isnan(t["region_angle"]).all() and np.isnan(t["region_value"]).all()

    clock = generate_one("clocks", 1, 2, difficulty="easy")
    t = view_labels(scene_labels(clock), (0, 0, *clock.image.size), grid=8, pad=(0.0, 0.0, 0.0, 0.0))
    hour_angle = np.radians(hand_angles(clock.scene["hour"], clock.scene["minute"], clock.scene["second"])[0])
    assert np.allclose(t["region_angle"][0], (np.sin(hour_angle), np.cos(hour_angle)), atol=1e-5)
    assert t["regions"][:, 0].sum() > 0 and t["regions"][:, 1].sum() > 0 and not t["regions"][:, 2:].any()

    chart = generate_one("docs", 1, 3, doc_kind="bar", difficulty="easy")
    labels = scene_labels(chart)
    t = view_labels(labels, (0, 0, *chart.image.size), grid=8, pad=(0.0, 0.0, 0.0, 0.0))
    values = t["region_value"][np.isfinite(t["region_value"])]
    assert len(values) == len(chart.scene["bars_px"]) and (values > 0).all() and (values <= 1).all()
    tallest = int(np.argmax(values))  # the tallest bar's region reaches highest up the view
    top_row = lambda r: np.nonzero(t["regions"][:, r].reshape(8, 8).sum(1))[0].min()  # noqa: E731
    assert all(top_row(tallest) <= top_row(r) for r in range(len(values)))


def test_region_losses_fall_when_the_heads_read_the_right_regions():
    """The mask-pooled heads: a region's loss uses only views that show enough of it."""
    views = [view_labels(scene_labels(generate_one(k, 1, i, **kw)), (0, 0, 300, 300), 8, (0.0, 0.0, 0.0, 0.0))
             for k, i, kw in (("points", 0, {}), ("clocks", 0, {}), ("docs", 0, {"doc_kind": "bar"}))]
    batch = {k: torch.from_numpy(np.stack([v[k] for v in views])) for k in views[0]}
    batch["time"] = torch.full((3, 2), -1)
    patch = torch.zeros(3, 64, sum(w for _, w in PATCH_OUTPUTS + COUNT_OUTPUTS + TIME_OUTPUTS))
    image = torch.zeros(3, sum(w for _, w in IMAGE_OUTPUTS))
    region = torch.zeros(3, MAX_REGIONS, sum(w for _, w in REGION_OUTPUTS))
    _, parts = dense_loss(patch, image, region, batch, region_weight=1.0)
    assert {"region_shape", "region_angle", "region_value"} <= set(parts)
    assert np.isclose(parts["region_shape"], np.log(len(SHAPES)), atol=1e-4)  # uniform logits
    region[0, :, :len(SHAPES)] = 20 * F.one_hot(batch["region_shape"][0].clamp_min(0), len(SHAPES))
    region[1, :2, len(SHAPES):len(SHAPES) + 2] = batch["region_angle"][1, :2]
    _, better = dense_loss(patch, image, region, batch, region_weight=1.0)
    _, off = dense_loss(patch, image, region, batch)
    assert not any(k.startswith("region") for k in off)  # the default recipe leaves them out
    assert better["region_shape"] < 1e-3 and better["region_angle"] < parts["region_angle"]
    assert better["region_shape_acc"] == 1.0
    total, _ = dense_loss(patch, image, region, batch, region_weight=1.0)
    dropped, logged = dense_loss(patch, image, region, batch, region_weight=1.0, weights=(("region_shape", 0),))
    assert "region_shape" in logged  # still logged, but not trained
    assert torch.isclose(total - dropped, torch.tensor(better["region_shape"]), atol=1e-5)
    doubled, _ = dense_loss(patch, image, region, batch, region_weight=1.0, weights=(("region_angle", 2),))
    assert torch.isclose(doubled - total, torch.tensor(better["region_angle"]), atol=1e-5)
    only, _ = dense_loss(patch, image, region, batch, region_weight=1.0, weights=(("*", 0), ("region_angle", 1)))
    assert torch.isclose(only, torch.tensor(better["region_angle"]), atol=1e-5)
    VisionPretrainConfig(loss_weights=(("*", 0), ("region_angle", 1), ("attribute_counts", 5)))
    with pytest.raises(ValueError, match=r"unknown heads \['hours'\]"):  # refused when configured, not mid-run
        VisionPretrainConfig(loss_weights=(("hours", 0),))


def test_sincos_positions_tell_patches_apart_and_keep_neighbours_close():
    codes = sincos_positions(8, 192)
    assert codes.shape == (64, 192)
    dist = torch.cdist(codes, codes)
    assert dist[~torch.eye(64, dtype=torch.bool)].min() > 0.1  # every patch has its own code
    # patch (0, 0) is nearer to its right neighbour than to the far corner
    assert dist[0, 1] < dist[0, 63] and dist[0, 8] < dist[0, 63]


def test_image_tokens_keep_the_text_scale_with_a_trained_vit_and_after_adam_steps(tiny_cfg, tmp_path):
    """A trained ViT's features are far larger than a random one's: the image tokens of a model built on it
    must still start near the text embeddings' RMS, and keep that scale through a few optimiser steps."""
    from safetensors.torch import save_file
    from molmo.model.init import init_weights
    from molmo.train.setup import build_model_and_processor
    donor = MolmoModel(preset("tiny-molmo"))
    init_weights(donor, seed=1)
    save_file({k: (v * 4 if v.dim() >= 2 else v).contiguous() for k, v in donor.vision.vit.state_dict().items()},
              str(tmp_path / "vit.safetensors"))
    cfg = dataclasses.replace(tiny_cfg, model="tiny-molmo", init_vit=str(tmp_path / "vit.safetensors"))
    model, _, _ = build_model_and_processor(cfg)
    vcfg = model.config.vision
    crops = torch.rand((2, 1, vcfg.num_patches, vcfg.patch_dim), generator=torch.Generator().manual_seed(5)) * 2 - 1
    rms = lambda t: float(t.detach().float().pow(2).mean().sqrt())  # noqa: E731
    text = rms(model.llm.embed.embedding)
    start = rms(model.vision(crops, torch.ones(2, 1, vcfg.num_patches)))
    assert 0.5 < start / text < 2.0
    connector = [p for n, p in model.vision.named_parameters() if not n.startswith("vit.")]
    opt = torch.optim.AdamW(connector, lr=2e-3)
    for _ in range(3):
        for p in connector:
            p.grad = torch.randn_like(p)
        opt.step()
    after = rms(model.vision(crops, torch.ones(2, 1, vcfg.num_patches)))
    assert 0.5 < after / start < 2.0
