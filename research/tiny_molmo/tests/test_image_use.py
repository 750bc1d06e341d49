"""Image use by task: the answer loss with each example's own image against the next example's image, read from
a run's checkpoint."""

from __future__ import annotations

import json

import pytest
import torch

from molmo.assets import DEFAULT_MODEL_DIR
from research.tiny_molmo import image_use
from research.tiny_molmo.grounding_check import run_check


@pytest.fixture(scope="module")
def one_crop_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gc")
    run_check(str(DEFAULT_MODEL_DIR), out, steps=2, train_images=16, test_images=4, batch=4, max_crops=1)
    return out / "run"


def test_swapping_images_changes_the_answer_loss_and_nothing_else(one_crop_run, monkeypatch):
    scores = image_use.image_use(one_crop_run, examples=8, batch=4)
    assert scores["step"] == 2 and set(scores) == {"step", "circles"}  # no validation sources: the training one
    s = scores["circles"]
    assert 0 < s["own_image"] < 20 and s["gap"] == pytest.approx(s["next_image"] - s["own_image"], abs=2e-4)
    assert abs(s["gap"]) > 1e-4  # other circles, another loss
    monkeypatch.setattr(image_use, "SWAPPED", ())  # the same batch unswapped: the same loss exactly
    assert image_use.image_use(one_crop_run, examples=8, batch=4)["circles"]["gap"] == 0


def test_runs_with_more_than_one_crop_are_refused(one_crop_run, tmp_path):
    config = json.loads((one_crop_run / "config.json").read_text())
    config["data"]["max_crops"] = 4
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(SystemExit, match="max_crops 1"):
        image_use.image_use(tmp_path)


def test_a_checkpoint_mid_run_exports_as_a_model_that_answers(one_crop_run, tmp_path):
    from molmo.api import Molmo
    from research.tiny_molmo.export_step import export_step
    from research.tiny_molmo.image_use import checkpoint_at, load_checkpoint_weights
    out = export_step(one_crop_run, tmp_path / "model", step=2)
    exported = Molmo.from_pretrained(out)
    preprocessor = json.loads((out / "preprocessor_config.json").read_text())
    assert preprocessor["max_crops"] == 1  # the run's crop budget, as the trainer's own export writes it
    trained = json.loads((one_crop_run / "model" / "preprocessor_config.json").read_text())
    assert preprocessor == trained
    from molmo.checkpoint.io import load_molmo
    final, _ = load_molmo(one_crop_run / "model")  # step 2 is the last step: the trainer's own export
    assert all(torch.equal(a, b) for a, b in zip(exported.model.state_dict().values(), final.state_dict().values()))
    from PIL import Image
    assert exported.ask(Image.new("RGB", (112, 112), "white"), "How many red circles are there?",
                        max_new_tokens=3).text is not None
    with pytest.raises(SystemExit, match="at step 7"):
        load_checkpoint_weights(final, checkpoint_at(one_crop_run, 7))


def test_kinds_split_a_source_and_skip_kinds_it_lacks(one_crop_run):
    whole = image_use.image_use(one_crop_run, examples=8, batch=4)["circles"]
    split = image_use.image_use(one_crop_run, examples=8, batch=4, kinds=("qa", "point"))
    assert set(split) == {"step", "circles/qa"}  # the circles are asked "how many" only: no point row
    assert split["circles/qa"] == whole


def test_positions_count_argmax_hits_per_answer_token(one_crop_run, monkeypatch):
    s = image_use.image_use(one_crop_run, examples=8, batch=4, positions=3)["circles"]
    assert len(s["hits_own"]) == len(s["hits_next"]) == 3
    assert all(0 <= v <= 1 for v in s["hits_own"] + s["hits_next"])
    monkeypatch.setattr(image_use, "SWAPPED", ())  # unswapped: the next image is the own image
    same = image_use.image_use(one_crop_run, examples=8, batch=4, positions=3)["circles"]
    assert same["hits_own"] == same["hits_next"] == s["hits_own"]


def test_position_hits_count_each_rows_kth_answer_token():
    labels = torch.tensor([[0, 7, 3, 7, 0], [0, 0, 7, 7, 1]])
    masks = torch.tensor([[0, 1, 1, 1, 0], [0, 0, 1, 1, 1]])
    logits = torch.zeros(*labels.shape, 10)
    logits[..., 7] = 1.0  # predicts token 7 everywhere
    hits = image_use.position_hits(logits, {"labels": labels, "loss_masks": masks}, 4)
    # first answer tokens 7, 7 (2 hits of 2); second 3, 7 (1 of 2); third 7, 1 (1 of 2); no fourth
    assert hits.tolist() == [[2, 2], [1, 2], [1, 2], [0, 0]]


def test_coordinate_spans_hold_the_values_of_x_and_y_and_not_the_label():
    from tokenizers import Tokenizer
    tokenizer = Tokenizer.from_file(str(DEFAULT_MODEL_DIR / "tokenizer.json"))
    tokens = lambda text: tokenizer.encode(text, add_special_tokens=False).tokens
    values = lambda text: ["".join(tokens(text)[i] for i in span) for span in image_use.coordinate_spans(tokens(text))]
    assert values(' <points x1="7.6" y1="62.1" x2="81.0" y2="12.4" alt="red 1">red 1</points>') == \
        ["7.6", "62.1", "81.0", "12.4"]
    assert values(' <point x="37.5" y="6.0" alt="x">x</point>') == ["37.5", "6.0"]
    assert values(" There are none.") == []


def test_coordinate_nats_sum_the_loss_of_each_value_and_its_first_token():
    text = {0: "Ġx", 1: '="', 2: "4", 3: ".", 4: '"', 5: "Ġalt", 6: "5"}
    labels = torch.tensor([[0, 1, 2, 3, 6, 4, 5, 1, 6, 4, 9, -100]])  # x="4.5" alt="5", then ids outside the vocab
    answer = torch.tensor([[1.0] * 10 + [0.0] * 2])
    logits = torch.randn(1, 12, 7)
    nats = image_use.coordinate_nats(logits, {"labels": labels, "loss_masks": answer}, text.get)
    nll = -torch.log_softmax(logits, -1)[0, torch.arange(10), labels[0, :10]]
    assert torch.allclose(nats, torch.tensor([float(nll[2:5].sum()), float(nll[2]), 1.0]))
    masked = image_use.coordinate_nats(logits, {"labels": labels, "loss_masks": torch.tensor([[1.0] * 2 + [0.0] * 10])},
                                       text.get)
    assert masked.tolist() == [0.0, 0.0, 0.0]  # only answer tokens are read
