"""The released recipe's data side on tiny fixture tables written in the `molmo data download` layout: the
pre-training and fine-tuning examples the training data path builds (one transcript, weighting, captions-only
PixMo-Cap, the Point-Explanations split, ChartQA loss weights, held-out images), the presets' data root and
missing-data error, `--print-config`, and the sampler state kept in the training checkpoint."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

import molmo
from molmo.cli import main
from molmo.data.pixmo import url_hash
from molmo.preprocess.config import PreprocessorConfig
from molmo.preprocess.processor import MolmoProcessor
from molmo.text.tokenizer import MolmoTokenizer
from molmo.train import presets
from molmo.train.config import apply_overrides
from molmo.train.batches import DataError, StepSampler, open_dataset, steps_for

TINY = Path(molmo.__file__).parent / "assets" / "tiny-molmo"
N_CAP, N_VAL = 40, 8


@pytest.fixture(autouse=True)
def table_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MOLMO_TABLE_CACHE", str(tmp_path_factory.getbasetemp() / "table_cache"))


def _parquet(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def _image(root: Path, url: str, size=(64, 48)) -> None:
    folder = root / "pixmo" / "images"
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (30, 90, 200)).save(folder / url_hash(url), format="PNG")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A data root with PixMo-Cap (3 transcripts per image), Point-Explanations, Points (+ its eval set) and
    ChartQA (human and augmented rows), as hub snapshots lay them out."""
    root = tmp_path_factory.mktemp("data_root")
    cap = []
    for i in range(N_CAP):
        _image(root, f"http://cap/{i}")
        cap.append({"image_url": f"http://cap/{i}", "caption": f"caption {i}",
                    "transcripts": [f"transcript {i}.{k}" for k in range(3)]})
    _parquet(root / "pixmo/cap/data/train-00000-of-00001.parquet", cap)
    expl = []
    for i, n in enumerate([1, 2, 3, 5]):  # questions per image
        _image(root, f"http://pe/{i}")
        expl += [{"image_url": f"http://pe/{i}", "image_sha256": "", "question": f"q{i}.{k}",
                  "parsed_response": f"answer {i}.{k}", "alt_text": [], "inline_text": [], "points": []}
                 for k in range(n)]
    _parquet(root / "pixmo/point_explanations/data/train-00000-of-00001.parquet", expl)
    points = []
    for i in range(6):
        _image(root, f"http://pt/{i}")
        points.append({"image_url": f"http://pt/{i}", "image_sha256": "", "label": "cat", "count": 1,
                       "points": [{"x": 50.0, "y": 50.0}], "collection_method": "pointing"})
    _parquet(root / "pixmo/points/data/train-00000-of-00001.parquet", points)
    _parquet(root / "pixmo/points_eval/data/test-00000-of-00001.parquet",
             [{"image_url": "http://pt/0", "image_sha256": "", "label": "cat", "points": [{"x": 50.0, "y": 50.0}]}])
    png = root / "chart.png"
    Image.new("RGB", (64, 48), "white").save(png)
    chart = [{"image": {"bytes": png.read_bytes(), "path": None}, "query": f"value {i}?", "label": [str(i)],
              "human_or_machine": i % 2} for i in range(6)]
    _parquet(root / "academic/chart_qa/train.parquet", chart)
    return root


@pytest.fixture(scope="module")
def processor() -> MolmoProcessor:
    return MolmoProcessor(MolmoTokenizer.from_dir(TINY), PreprocessorConfig.from_json(TINY / "preprocessor_config.json"))


def _small(cfg, root: Path, **data):
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root=str(root), max_crops=2, num_workers=0,
                                                             **data))


def _answers(dataset, key) -> list[str]:
    name, i, epoch = key
    k = dataset.names.index(name)
    return [c[1].strip() for c in dataset.formatters[k].format(dataset.collections[k][i], index=i, epoch=epoch)]


# ------------------------------------------------------------------------------------------------ pre-training
def test_pretraining_packs_one_transcript_unweighted_and_holds_out_validation(root, processor):
    cfg = _small(presets.released_pretrain("7b-d"), root)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(
        cfg.data, sources=(dataclasses.replace(cfg.data.sources[0], options={**cfg.data.sources[0].options, "n_val": N_VAL}),),
        validation=(dataclasses.replace(cfg.data.validation[0], options={**cfg.data.validation[0].options, "n_val": N_VAL}),)))
    train, val = open_dataset(cfg, processor=processor), open_dataset(cfg, validation=True, processor=processor)
    assert len(train.collections[0]) == N_CAP - N_VAL and len(val.collections[0]) == N_VAL
    assert not {e.id for e in train.collections[0]} & {e.id for e in val.collections[0]}  # held out
    assert steps_for(cfg, N_CAP - N_VAL) == 4 * (N_CAP - N_VAL + 127) // 128 == 4
    assert steps_for(cfg, 709_000) == 22_160  # ~22k at the released size
    keys = train.sampler.indices(60)
    firsts = []
    for key in keys:
        answers = _answers(train, key)
        assert len(answers) == 2 and sum(a.startswith("caption") for a in answers) == 1  # caption + ONE transcript
        firsts.append(answers[0].startswith("caption"))
    assert 0 < sum(firsts) < len(firsts)  # order shuffled
    masks = train[keys[0]]["loss_masks"]
    assert set(np.unique(masks).tolist()) == {0.0, 1.0}  # no sqrt(1/n) weighting in pre-training
    assert train.sampler.seed == 95818


def test_pretraining_reports_caption_and_caption_only_validation_losses(root, processor, tiny_cfg):
    """The released pre-training's two loss evaluations: caption + transcript and caption only, on the same
    held-out images, logged as `val_loss` and `val_loss/pixmo_cap_caption_only`."""
    from molmo.train.batches import validation_sets
    from molmo.train.trainer import train
    preset = presets.released_pretrain("7b-d")

    def held_out(sources):
        return tuple(dataclasses.replace(s, options={**s.options, "n_val": N_VAL}) for s in sources)

    data = dataclasses.replace(preset.data, root=str(root), max_crops=2, num_workers=0, sequence_length=400,
                               sources=held_out(preset.data.sources), validation=held_out(preset.data.validation),
                               extra_validation=held_out(preset.data.extra_validation))
    cfg = dataclasses.replace(tiny_cfg, data=data, steps=1, global_batch=2, micro_batch=2, eval_every=1,
                              eval_batches=2, eval_examples=0, save_every=10)
    sets = validation_sets(cfg)
    assert list(sets) == ["val_loss", "val_loss/pixmo_cap_caption_only"]
    mixed, captions = sets["val_loss"], sets["val_loss/pixmo_cap_caption_only"]
    assert {e.id for e in mixed.collections[0]} == {e.id for e in captions.collections[0]}  # the same 8 images
    for key in captions.sampler.indices(16):
        assert [a.split()[0] for a in _answers(captions, key)] == ["caption"]
    assert all(sorted(a.split()[0] for a in _answers(mixed, key)) == ["caption", "transcript"]
               for key in mixed.sampler.indices(16))
    train(cfg)
    record = json.loads((Path(cfg.out_dir) / "metrics.jsonl").read_text().splitlines()[0])
    losses = record["val_loss"], record["val_loss/pixmo_cap_caption_only"]
    assert all(math.isfinite(v) and v > 0 for v in losses) and losses[0] != losses[1]


# ------------------------------------------------------------------------------------------------ fine-tuning
def _sft(root: Path, names: tuple[str, ...]):
    cfg = presets.released_sft("7b-d")
    chosen = []
    for s in cfg.data.sources:
        if s.name in names:
            options = {**s.options, "n_val": 2} if s.options.get("split") else s.options
            chosen.append(dataclasses.replace(s, options=options))
    return _small(cfg, root, sources=tuple(chosen))


def test_fine_tuning_sources_follow_the_release(root, processor):
    cfg = _sft(root, ("pixmo_cap", "pixmo_pointing_explanations", "chart_qa_weighted", "pixmo_points"))
    data = open_dataset(cfg, processor=processor)
    sizes = dict(zip(data.names, (len(c) for c in data.collections)))
    cap = data.collections[data.names.index("pixmo_cap")]
    assert all([a.kind for a in e.annotations] == ["caption"] for e in cap)  # captions only
    # Point-Explanations: 4 images (1, 2, 3, 5 questions), 2 held out; each image with n > 1 questions gives two
    # examples: the first ceil(n/2) questions, then the rest; the mixture rate counts those examples.
    expl = data.collections[data.names.index("pixmo_pointing_explanations")]
    by_image = {}
    for e in expl:
        by_image.setdefault(e.id.split("#")[0], []).append(len(e.annotations))
    n_q = {f"http://pe/{i}": n for i, n in enumerate([1, 2, 3, 5])}
    assert len(by_image) == 2
    for url, halves in by_image.items():
        n = n_q[url]
        assert halves == ([n] if n == 1 else [math.ceil(n / 2), n - math.ceil(n / 2)])
    assert sizes["pixmo_pointing_explanations"] == sum(len(h) for h in by_image.values())
    points = data.collections[data.names.index("pixmo_points")]
    assert "http://pt/0" not in {e.id for e in points}  # the pointing-eval image is kept out
    # ChartQA: human rows weigh 2*20901/28299, augmented ones 2*7398/28299, in the pre-processor's loss mask.
    k = data.names.index("chart_qa_weighted")
    seen = set()
    for i, ex in enumerate(data.collections[k]):
        masks = data[("chart_qa_weighted", i, 0)]["loss_masks"]
        weight = float(masks[masks > 0][0])
        expected = 2 * (20901 if ex.annotations[0].weight > 1 else 7398) / 28299
        assert weight == pytest.approx(expected, rel=1e-6)
        seen.add(round(weight, 3))
    assert seen == {1.477, 0.523}
    assert data.sampler.seed == 50189 and cfg.data.multi_annotation_weighting == "root_subsegments"
    two = next(i for i, e in enumerate(expl) if len(e.annotations) == 2)  # SFT keeps the sqrt(1/n) weighting
    masks = data[("pixmo_pointing_explanations", two, 0)]["loss_masks"]
    assert float(masks[masks > 0][0]) == pytest.approx(math.sqrt(0.5), rel=1e-6)


def test_training_walks_the_stream_per_rank_and_resumes(root, processor):
    data = open_dataset(_sft(root, ("pixmo_cap", "chart_qa_weighted")), processor=processor)
    whole = list(StepSampler(data.sampler, 8, 0, 1, 0, 6))
    halves = [list(StepSampler(data.sampler, 8, r, 2, 0, 6)) for r in range(2)]
    assert [k for s in range(6) for h in halves for k in h[4 * s:4 * s + 4]] == whole  # any world size
    resumed = StepSampler(data.sampler, 8, 0, 1, 3, 6)
    assert data.sampler.check_state(resumed.state(3)) == 24 and list(resumed) == whole[24:]


# ------------------------------------------------------------------------------------------------ presets, CLI
def test_a_preset_missing_data_fails_before_step_one_naming_each_source(tmp_path, capsys):
    from molmo.train.trainer import train
    cfg = apply_overrides(presets.get("sft-7b-d"), [f"--data_root={tmp_path}"])
    with pytest.raises(DataError) as err:
        train(cfg)  # raises before the 7B model is built
    message = str(err.value)
    assert message.startswith(f"data not found under --data_root={tmp_path}")
    named = {line.split(" (")[0].strip() for line in message.splitlines()[1:]}
    assert len(named) == 31 + 7  # every source of the mixture and every in-training benchmark, each named
    assert f"pixmo_points (pixmo:points): missing exclude {tmp_path}/pixmo/points_eval -> molmo data download " \
           f"--root {tmp_path} pixmo-points-eval" in message
    assert f"  eval countbenchqa: missing {tmp_path}/benchmarks/countbenchqa" in message
    for name in ("pixmo_cap", "pixmo_points_high_freq_counting", "chart_qa_weighted", "android_control"):
        assert f"  {name} (" in message
    assert f"molmo data download --root {tmp_path} pixmo-cap" in message
    assert f"put its tables and images under {tmp_path}/academic/chart_qa" in message


def test_print_config_resolves_the_released_presets(root, capsys):
    assert main(["train", "sft-1b", "--print-config", f"--data_root={root}"]) == 0
    out = json.loads(capsys.readouterr().out)
    config, resolved = out["config"], out["resolved"]
    assert config["data"]["seed"] == 50189 and config["attention_dropout"] == 0.1
    assert resolved["model"]["llm"]["attention_dropout"] == 0.1 and resolved["model"]["llm"]["residual_dropout"] == 0.1
    assert config["inference_eval"]["every"] == 2000
    sources_missing = {line.split(" (")[0] for line in resolved["missing"] if not line.startswith("  eval ")}
    assert len(sources_missing) == 31 - 7  # in the fixture root: cap, point explanations, chart_qa, the 4 points sets
    assert any(line.startswith("  eval chartqa: missing") for line in resolved["missing"])
    assert resolved["sources"]["pixmo_points"]["exclude"] == str(root / "pixmo/points_eval")
    n_val = ["--data.sources.0.options={\"transcripts\": true, \"split\": \"train\", \"n_val\": 8}",
             "--data.validation.0.options={\"transcripts\": true, \"split\": \"validation\", \"n_val\": 8}",
             "--data.extra_validation.0.options={\"transcripts\": false, \"split\": \"validation\", \"n_val\": 8}"]
    assert main(["train", "pretrain-7b-d", "--print-config", f"--data_root={root}", *n_val]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["data"]["seed"] == 95818 and out["config"]["data"]["multi_annotation_weighting"] == "none"
    assert out["config"]["attention_dropout"] == 0.0 and out["config"]["eval_every"] == 1000
    assert out["resolved"]["sources"]["pixmo_cap_caption_only"]["transcripts"] is False  # the caption-only loss
    assert out["resolved"]["examples"] == {"pixmo_cap": N_CAP - N_VAL}
    assert out["resolved"]["steps"] == 4 * (N_CAP - N_VAL + 127) // 128


def test_tiny_presets_keep_their_seeds():
    assert presets.get("tiny-sft").data.seed == 6198 and presets.get("tiny-pretrain").data.seed == 6198
    assert presets.get("tiny-sft").inference_eval.every == 0


def test_checkpoint_keeps_the_data_state(tiny_cfg):
    from molmo.train.checkpointing import trainer_state
    from molmo.train.trainer import train
    cfg = dataclasses.replace(tiny_cfg, steps=2, save_every=1, export=False, eval_every=0)
    train(cfg)
    state = trainer_state(Path(cfg.out_dir))
    assert state["step"] == 2 and state["data"]["position"] == 2 * cfg.global_batch
    assert state["data"]["seed"] == cfg.data.seed and state["data"]["sizes"] == {"circles": 24}
    changed = dataclasses.replace(cfg, steps=3, data=dataclasses.replace(cfg.data, seed=cfg.data.seed + 1))
    with pytest.raises(ValueError, match="data stream differs"):
        train(changed)


def test_attention_dropout_only_in_training(tiny_cfg):
    """The run's dropout is in the model config before the model is built; it acts in training only."""
    import torch
    from molmo.model.molmo import MolmoModel
    from molmo.text.tokenizer import CharTokenizer
    from molmo.train.setup import model_config
    run = dataclasses.replace(tiny_cfg, residual_dropout=0.0, response_residual_dropout=0.0, attention_dropout=0.1)
    config = model_config(run, None, CharTokenizer(embedding_size=512, eos_token_id=511))
    assert config.llm.attention_dropout == 0.1 and config.eos_token_id == 511
    torch.manual_seed(0)
    model = MolmoModel(config)
    assert all(b.attn.cfg.attention_dropout == 0.1 for b in model.llm.blocks)
    ids = torch.randint(0, 400, (1, 24))
    reference = model.eval()(ids).logits
    torch.testing.assert_close(model(ids).logits, reference)  # eval: no dropout
    model.train()
    assert not torch.allclose(model(ids).logits, reference)


def test_generation_evaluations_run_during_training(tiny_cfg, tmp_path):
    from molmo.train.config import InferenceEvalConfig
    from molmo.train.trainer import train
    bench = tmp_path / "benchmarks" / "clockbench"
    bench.mkdir(parents=True)
    Image.new("RGB", (48, 48), "white").save(bench / "face.png")
    (bench / "data.jsonl").write_text("".join(json.dumps({"image": "face.png", "hour": h, "minute": 5}) + "\n"
                                              for h in (3, 9)))
    cfg = dataclasses.replace(tiny_cfg, steps=2, save_every=2, export=False, eval_every=0,
                              inference_eval=InferenceEvalConfig(every=2, benchmarks=("clockbench",),
                                                                 data_dir=str(tmp_path / "benchmarks"), max_examples=2))
    train(cfg)
    records = [json.loads(line) for line in (Path(cfg.out_dir) / "metrics.jsonl").read_text().splitlines()]
    assert "eval/clockbench" not in records[0] and 0.0 <= records[1]["eval/clockbench"] <= 1.0
    predictions = (Path(cfg.out_dir) / "evals" / "step_0000002" / "predictions.jsonl").read_text().splitlines()
    assert len(predictions) == 2
    missing = dataclasses.replace(cfg, inference_eval=dataclasses.replace(cfg.inference_eval, data_dir=str(tmp_path)))
    with pytest.raises(DataError, match="eval clockbench: missing"):
        train(missing)


def test_loader_workers_read_the_mapped_tables(root, processor):
    from molmo.train.batches import build_loader
    cfg = _sft(root, ("pixmo_cap", "chart_qa_weighted"))
    cfg = dataclasses.replace(cfg, global_batch=4, micro_batch=2, steps=2,
                              data=dataclasses.replace(cfg.data, num_workers=2, sequence_length=2304))
    data = open_dataset(cfg)
    batches = list(build_loader(cfg, processor, 0, 1, dataset=data))
    inline = list(build_loader(dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, num_workers=0)),
                               processor, 0, 1, dataset=data))
    assert [len(step) for step in batches] == [2, 2]  # two steps of two micro-batches
    assert all(torch_equal(a, b) for step, other in zip(batches, inline) for a, b in zip(step, other))


def torch_equal(a: dict, b: dict) -> bool:
    import torch
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _clock_benchmarks(folder: Path) -> None:
    """ClockBench and VQA v2 folders of generated clocks (what the tiny model reads): VQA v2 asks three
    questions per clock, whose answers the tiny model gives in 3 to 12 tokens."""
    from molmo.data.generators import generate_one
    (folder / "clockbench").mkdir(parents=True)
    (folder / "vqav2").mkdir(parents=True)
    clocks, vqa = [], []
    for i in range(3):
        clock = generate_one("clocks", 1, i)
        clock.image.convert("RGB").save(folder / "clockbench" / f"{i}.png")
        hour, minute = clock.annotations[1]["answer"].split(":")
        clocks.append({"image": f"{i}.png", "hour": int(hour), "minute": int(minute)})
        if i < 2:
            clock.image.convert("RGB").save(folder / "vqav2" / f"{i}.png")
            vqa += [{"question_id": f"{i}.{k}", "image": f"{i}.png", "question": q, "answers": [a]}
                    for k, (q, a) in enumerate([("What time is it? Answer with H:MM.", f"{hour}:{minute}"),
                                                ("Can you tell what time it is from the clock?", f"{hour}:{minute}"),
                                                ("What hour is it on the clock?", hour)])]
    (folder / "clockbench" / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in clocks))
    _parquet(folder / "vqav2" / "validation-00000-of-00001.parquet", vqa)


@pytest.mark.slow  # two 2-process runs and a one-process run (~100 s on 2 loaded cores): full suite only
def test_generation_evaluations_on_two_ranks_match_one_process(tiny_cfg, tmp_path):
    """torchrun with 2 CPU processes (gloo, FSDP2): the ranks share out the items (a rank without a share of a
    generation group answers a dummy row) and decode in lockstep (answers of different lengths side by side);
    the logged scores and the predictions are those of the 1-process run (the embedded tiny model, greedy, a
    near-zero learning rate); a bf16 run answers every item too."""
    import os
    import subprocess
    import sys

    from molmo.train.config import GroupOptim, InferenceEvalConfig
    from molmo.train.trainer import train
    _clock_benchmarks(tmp_path / "benchmarks")
    still = GroupOptim(1e-9, 1)
    cfg = dataclasses.replace(
        tiny_cfg, init=str(TINY), steps=1, save_every=1, export=False, eval_every=0, residual_dropout=0.0,
        optim=dataclasses.replace(tiny_cfg.optim, connector=still, vit=still, llm=still),
        inference_eval=InferenceEvalConfig(every=1, benchmarks=("vqav2", "clockbench"),
                                           data_dir=str(tmp_path / "benchmarks"), batch_size=1))
    one = dataclasses.replace(cfg, out_dir=str(tmp_path / "one"))
    train(one)
    two = dataclasses.replace(cfg, out_dir=str(tmp_path / "two"))
    two_bf16 = dataclasses.replace(cfg, out_dir=str(tmp_path / "two_bf16"), precision="bf16")
    for run in (two, two_bf16):  # bf16: FSDP computes in bf16 while the stored weights stay fp32
        (tmp_path / "cfg.json").write_text(run.to_json())
        script = tmp_path / "run.py"
        script.write_text("import json\nfrom molmo.train.config import TrainConfig, from_dict\n"
                          "from molmo.train.trainer import train\n"
                          f"train(from_dict(TrainConfig, json.loads(open({str(tmp_path / 'cfg.json')!r}).read())))\n")
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                               str(script)], capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]

    def logged(run) -> tuple[dict, dict, dict]:
        record = json.loads((Path(run.out_dir) / "metrics.jsonl").read_text().splitlines()[0])
        evals = Path(run.out_dir) / "evals" / "step_0000001"
        lines = (evals / "predictions.jsonl").read_text().splitlines()
        return ({k: v for k, v in record.items() if k.startswith("eval/")},
                {row["key"]: row["prediction"] for row in map(json.loads, lines)},
                json.loads((evals / "metrics.json").read_text()))

    (scores_1, predictions_1, metrics_1), (scores_2, predictions_2, metrics_2) = logged(one), logged(two)
    assert set(scores_1) == {"eval/vqav2", "eval/clockbench"} and scores_2 == scores_1
    assert metrics_2 == metrics_1 and metrics_1["vqav2"]["n"] == 6 and metrics_1["clockbench"]["n"] == 3
    assert len(predictions_1) == 9 and predictions_2 == predictions_1
    assert logged(two_bf16)[1].keys() == predictions_1.keys()
    # rank 0 answers VQA v2 items 0, 2, 4 and rank 1 items 1, 3, 5 side by side (the last ClockBench item
    # beside a dummy row): answers of different lengths make one rank finish its rows first
    answers = [predictions_1[f"vqav2::{i}.{k}"] for i in range(2) for k in range(3)]
    assert any(len(answers[j].split()) != len(answers[j + 1].split()) for j in (0, 2, 4)), answers
