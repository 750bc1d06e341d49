"""The tiny-molmo chain (training/tiny-molmo/chain.py): stages run in order from the previous stage's committed
artifact, each finished stage is packaged (bf16 weights, resolved config, metrics, command), and a machine that
has only the artifacts goes on from the last one. Every stage is cut to a few steps here."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("tiny_chain", ROOT / "training" / "tiny-molmo" / "chain.py")
chain = sys.modules["tiny_chain"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(chain)

SMALL_VISION = ("--steps=2", "--images_per_step=1", "--views_per_image=2", "--workers=0", "--save_every=1",
                "--log_every=1")
SMALL_TRAIN = ("--steps=2", "--global_batch=2", "--micro_batch=2", "--save_every=1", "--eval_every=0",
               "--data.num_workers=0", "--data.sequence_length=256", "--data.max_crops=1")
# The shipped tokenizer instead of one trained on hundreds of generated images per source.
SHIPPED = Path(__import__("molmo.api", fromlist=["DEFAULT_MODEL_DIR"]).DEFAULT_MODEL_DIR)
SMALL = {"tiny-vision": SMALL_VISION, "tiny-vision-regions": SMALL_VISION, "tiny-vision-clocks": SMALL_VISION,
         "tiny-pretrain": SMALL_TRAIN + (f"--tokenizer={SHIPPED}",), "tiny-sft": SMALL_TRAIN}


def other_seeds(stage: str) -> set[int]:
    """The data-order seeds of every tiny trainer preset but `stage`'s."""
    from molmo.train import presets
    return {presets.get(n).data.seed for n in presets.PRESETS
            if n.startswith("tiny-") and "vision" not in n and n != stage}


@pytest.fixture(scope="module")
def finished_chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("chain")
    places = chain.Places(root / "runs", root / "artifacts")
    chain.run_chain(places, extra=SMALL, evaluate=False)
    return places


@pytest.mark.slow  # the chain fixture trains every stage (~2 min on 2 loaded cores): full suite only
def test_every_stage_is_packaged_from_the_previous_artifact(finished_chain):
    places = finished_chain
    for stage in chain.STAGES:
        art = places.artifact(stage)
        info = json.loads((art / "stage.json").read_text())
        assert info["stage"] == stage.name and info["steps"] == 2
        assert info["precision"] in ("bf16", "fp32")  # "auto" was resolved by the run
        assert (art / "command.txt").read_text().startswith(f"molmo train {stage.name} ")
        weights = load_file(str(chain.weights(stage, art) / ("" if stage.vision else "model.safetensors")))
        assert {t.dtype for t in weights.values()} == {torch.bfloat16}
        if stage.previous:  # started from the previous stage's artifact, not its run folder
            prev = chain.BY_NAME[stage.previous]
            assert str(chain.weights(prev, places.artifact(prev)).relative_to(places.artifacts.parent)) in \
                (art / "command.txt").read_text()
    sft = json.loads((places.artifact(chain.STAGES[-1]) / "train_config.json").read_text())
    assert sft["data"]["max_crops"] == 1
    shipped_pre = json.loads((places.artifact(chain.STAGES[-1]) / "model" / "preprocessor_config.json").read_text())
    assert shipped_pre["max_crops"] == 1  # the crop budget training used, so inference defaults to it


@pytest.mark.slow  # the chain fixture trains every stage (~2 min on 2 loaded cores): full suite only
def test_collect_never_replaces_an_artifact_silently(finished_chain):
    with pytest.raises(SystemExit, match="already holds an artifact"):
        chain.collect(chain.STAGES[0], finished_chain)


def test_status_tells_a_committed_artifact_from_one_only_on_this_machine(tmp_path):
    """An artifact git does not track is lost with its machine: status must not call it committed."""
    import subprocess
    places = chain.Places(tmp_path / "runs", tmp_path / "repo" / "artifacts")
    stage = chain.STAGES[0]
    places.artifact(stage).mkdir(parents=True)
    (places.artifact(stage) / "stage.json").write_text("{}")
    subprocess.run(["git", "init", "-q", str(tmp_path / "repo")], check=True)
    assert chain.progress(stage, places) == "collected, not in git (only on this machine)"
    git = ["git", "-C", str(tmp_path / "repo"), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git + ["add", "artifacts"], check=True)
    subprocess.run(git + ["commit", "-qm", "artifact"], check=True)
    assert chain.progress(stage, places) == "committed"


@pytest.mark.slow  # the chain fixture trains every stage (~2 min on 2 loaded cores): full suite only
def test_a_new_machine_goes_on_from_the_last_committed_stage(finished_chain, tmp_path, monkeypatch):
    """Only the artifacts travel: with tiny-sft's removed and no run folders at all, only tiny-sft trains, its
    images drawn first (`--pregenerate`) into an empty generated-image cache."""
    import shutil
    monkeypatch.setenv("MOLMO_GENERATED_CACHE", str(tmp_path / "generated"))
    artifacts = tmp_path / "artifacts"
    shutil.copytree(finished_chain.artifacts, artifacts)
    shutil.rmtree(artifacts / "tiny-sft")
    places = chain.Places(tmp_path / "runs", artifacts)
    assert [chain.progress(s, places) for s in chain.STAGES] == \
        ["collected, not in git (only on this machine)"] * (len(chain.STAGES) - 1) + ["not run"]
    chain.run_chain(places, extra=SMALL, evaluate=False, pregenerate=1)
    assert sorted(p.name for p in places.runs.iterdir()) == ["tiny-sft"]
    assert chain.collected(chain.STAGES[-1], places)
    log = (places.run(chain.STAGES[-1]) / "train.log").read_text()
    assert "images of the run" in log and ", 0 already there)" in log
    assert len(list((tmp_path / "generated").rglob("*.json"))) >= 4  # 2 steps x global batch 2


@pytest.mark.parametrize("lock", [chain.LOCK, chain.TRAINER_LOCK])
def test_a_stage_someone_else_is_training_is_waited_for(tmp_path, monkeypatch, lock):
    """Another chain's stage, or a trainer a killed chain left running: waited for, not started twice."""
    places = chain.Places(tmp_path / "runs", tmp_path / "artifacts")
    run = places.run(chain.STAGES[0])
    run.mkdir(parents=True)
    (run / lock).write_text("1\n")  # pid 1 is always alive
    naps = []

    def nap(seconds):
        naps.append(seconds)
        (run / lock).write_text("999999999\n")  # the other process ends (no such pid); its run finished
        (run / "vision_config.json").write_text("{}")
    monkeypatch.setattr(chain.time, "sleep", nap)
    chain.train_stage(chain.STAGES[0], places)
    assert naps == [30]


def test_the_candidate_branches_after_caption_pretraining_and_keeps_one_image_layout():
    """`--to tiny-sft-grounded` runs the shared stages, then grounding, counting and the mixture: each preset
    starts from its previous stage's run and the three fine-tuning stages write images the same way."""
    from molmo.train import presets
    shared = [s.name for s in chain.STAGES[:-1]]
    assert [s.name for s in chain.path_to("tiny-sft")] == [s.name for s in chain.STAGES]
    assert [s.name for s in chain.path_to("tiny-sft-grounded")] == shared + ["tiny-ground", "tiny-ground-counts",
                                                                         "tiny-sft-grounded"]
    ground, counts, mixture = (presets.get(n) for n in ("tiny-ground", "tiny-ground-counts", "tiny-sft-grounded"))
    assert ground.init.endswith("tiny-pretrain/model") and counts.init.endswith("tiny-ground/model")
    assert mixture.init.endswith("tiny-ground-counts/model")
    assert ground.preprocessor == counts.preprocessor == mixture.preprocessor
    assert ground.preprocessor["use_col_tokens"] is False
    assert not any("captions" in s.kind for s in ground.data.sources)  # image-dependent answers only
    assert {s.annotations_per_example for s in ground.data.sources + ground.data.validation} == {1}  # short steps
    assert any("captions" in s.kind for s in mixture.data.sources)  # captions come back after grounding
    assert {s.annotations_per_example for s in mixture.data.sources} == {1}
    scenes = [s for s in mixture.data.sources + mixture.data.validation if s.kind == "generator:points"]
    assert scenes and all(s.options["count_questions"] == "target" for s in scenes)  # no wording-predictable counts
    assert mixture.data.max_crops == counts.data.max_crops == ground.data.max_crops == 1
    assert mixture.optim.llm.lr < counts.optim.llm.lr < ground.optim.llm.lr
    assert presets.get("tiny-sft").preprocessor.get("use_col_tokens", True)  # what ships (v3) keeps <im_col>


def test_the_counting_stage_asks_the_point_scenes_only_how_many_of_their_target_group():
    """tiny-ground-counts keeps tiny-ground's sources in a new order, its point scenes (training and validation)
    asking one bare "how many" question, about the scene's target group, and weighted to most of the examples."""
    from molmo.train import presets
    from molmo.train.batches import open_source
    ground, counts = presets.get("tiny-ground"), presets.get("tiny-ground-counts")
    assert [s.name for s in counts.data.sources] == [s.name for s in ground.data.sources]
    assert counts.data.seed != ground.data.seed
    points = [s for s in counts.data.sources + counts.data.validation if "points" in s.name]
    assert points and all(s.annotation_kinds == ("qa",) for s in points)
    others = [s for s in counts.data.sources if "points" not in s.name]
    assert others and all(not s.annotation_kinds for s in others)  # clocks and charts keep every question
    total = sum(s.rate for s in counts.data.sources)
    assert sum(s.rate for s in points if not s.name.startswith("val_")) / total >= 0.6
    val_points = next(s for s in counts.data.validation if s.name == "val_points_easy")
    from molmo.data.generators import generate_one
    from molmo.data.generators.scenes import PLURAL
    for i in range(3):
        (question,) = open_source(val_points)[i].annotations
        target = generate_one("points", val_points.seed, i, **val_points.options).scene["target"]
        assert question.kind == "qa"
        assert question.question == f"How many {target['colour']} {PLURAL[target['shape']]} are there?"


def test_the_four_crop_counting_stage_changes_only_the_crop_budget_and_the_data_order():
    """tiny-count-crops continues the counting stage's model on its mixture at up to four crops: the same sources,
    rates, image layout and learning rates, a data order neither earlier stage drew."""
    from molmo.train import presets
    counts, crops = presets.get("tiny-ground-counts"), presets.get("tiny-count-crops")
    assert [s.name for s in chain.path_to("tiny-count-crops")][-2:] == ["tiny-ground-counts", "tiny-count-crops"]
    assert crops.init.endswith("tiny-ground-counts/model")
    assert (crops.data.max_crops, counts.data.max_crops) == (4, 1)
    assert crops.data.seed not in {counts.data.seed, presets.get("tiny-ground").data.seed}
    assert crops.data.sources == counts.data.sources and crops.data.validation == counts.data.validation
    assert (crops.optim, crops.preprocessor) == (counts.optim, counts.preprocessor)


def test_the_grouped_counting_stage_asks_about_one_of_several_groups_and_keeps_the_rest():
    """tiny-count-groups: the counting stage's sources with easy scenes holding three counted groups and normal
    ones two (training and validation alike); clocks, charts, rates, rates of learning and layout unchanged."""
    from molmo.train import presets
    counts, groups = presets.get("tiny-ground-counts"), presets.get("tiny-count-groups")
    assert groups.init.endswith("tiny-ground-counts/model") and groups.data.max_crops == 1
    assert groups.data.seed not in {counts.data.seed, presets.get("tiny-count-crops").data.seed}
    for mine, theirs in zip(groups.data.sources + groups.data.validation, counts.data.sources + counts.data.validation):
        expected = {"points_easy": 3, "points": 2}.get(mine.name.removeprefix("val_"))
        assert mine.options.get("groups") == expected
        assert {k: v for k, v in mine.options.items() if k != "groups"} == theirs.options
        assert (mine.rate, mine.annotation_kinds) == (theirs.rate, theirs.annotation_kinds)
    assert (groups.optim, groups.preprocessor) == (counts.optim, counts.preprocessor)


def test_the_colour_counting_stage_differs_from_the_grouped_one_only_in_how_groups_differ():
    """tiny-count-colours: tiny-count-groups with `group_by="colour"` on the point scenes and its own data order
    and run folder; everything else (init, steps, rates, layout, clocks and charts) the same."""
    from molmo.train import presets
    groups, colours = presets.get("tiny-count-groups"), presets.get("tiny-count-colours")
    assert colours.data.seed not in {presets.get(n).data.seed for n in
                                     ("tiny-ground-counts", "tiny-count-crops", "tiny-count-groups")}
    for mine, theirs in zip(colours.data.sources + colours.data.validation,
                            groups.data.sources + groups.data.validation):
        points = "groups" in theirs.options
        assert mine.options == ({**theirs.options, "group_by": "colour"} if points else theirs.options)
        assert (mine.rate, mine.annotation_kinds) == (theirs.rate, theirs.annotation_kinds)
    assert colours.out_dir.endswith("tiny-count-colours")
    same = lambda c: dataclasses.replace(c, data=dataclasses.replace(c.data, sources=(), validation=(), seed=0),
                                         out_dir="")
    assert same(colours) == same(groups)
    assert chain.path_to("tiny-count-colours")[-2].name == "tiny-ground-counts"


def test_the_binding_stage_counts_colour_groups_of_easy_scenes_at_the_grounding_rates():
    """tiny-count-bind: only the easy point scenes (three groups of one shape differing in colour, 0-4 each) with
    the normal scenes' rate added, tiny-ground's learning rates, the clocks and charts as in the counting stage."""
    from molmo.train import presets
    counts, bind = presets.get("tiny-ground-counts"), presets.get("tiny-count-bind")
    assert bind.init.endswith("tiny-ground-counts/model") and bind.optim == presets.get("tiny-ground").optim
    assert bind.data.seed not in {presets.get(n).data.seed for n in
                                  ("tiny-ground-counts", "tiny-count-crops", "tiny-count-groups", "tiny-count-colours")}
    for mine_all, theirs_all in ((bind.data.sources, counts.data.sources),
                                 (bind.data.validation, counts.data.validation)):
        theirs = {s.name.removeprefix("val_"): s for s in theirs_all}
        mine = {s.name.removeprefix("val_"): s for s in mine_all}
        assert set(mine) == set(theirs) - {"points"}
        easy = mine.pop("points_easy")
        assert easy.options == {**theirs["points_easy"].options, "groups": 3, "group_by": "colour", "max_count": 4}
        assert easy.rate == pytest.approx(theirs["points_easy"].rate + theirs["points"].rate)
        assert all(s == theirs[name] for name, s in mine.items())
    assert sum(s.rate for s in bind.data.sources) == pytest.approx(sum(s.rate for s in counts.data.sources))


def test_the_binding_curriculum_goes_from_the_grounding_checks_circles_to_scenes_to_the_full_range():
    """tiny-bind-circles: the committed counting stage on the generator's plain circles only (one "how many"
    question an image, tiny-ground's rates, batch and layout, its own data order); tiny-bind-scenes:
    tiny-count-bind's mixture from it; tiny-bind-range: tiny-count-groups' from that; tiny-bind-crops: that at
    four crops; the chain runs them in that order. tiny-point-circles asks the circles for points,
    tiny-point-crops does so at nine crops, tiny-point-connector with a ten times faster connector,
    tiny-point-single on scenes with at most one circle of each colour, tiny-point-pairs with two from it,
    tiny-point-fours with tiny-point-circles' four from that."""
    from molmo.train import counting_presets, presets
    ground, circles, scenes = (presets.get(n) for n in ("tiny-ground", "tiny-bind-circles", "tiny-bind-scenes"))
    assert circles.init.endswith("tiny-ground-counts/model") and circles.data.seed not in other_seeds("tiny-bind-circles")
    (source,), (val,) = circles.data.sources, circles.data.validation
    assert source.kind == val.kind == "generator:points"
    assert source.options == val.options == counting_presets.BIND_CIRCLES and source.seed != val.seed
    assert (source.annotation_kinds, source.annotations_per_example) == (("qa",), 1)
    same = lambda c: dataclasses.replace(c, init="", data=dataclasses.replace(c.data, sources=(), validation=(), seed=0),
                                         out_dir="")
    assert same(circles) == same(ground)
    bind = presets.get("tiny-count-bind")
    assert scenes.init.endswith("tiny-bind-circles/model") and scenes.steps == 1500
    assert dataclasses.replace(scenes, init=bind.init, steps=bind.steps, out_dir=bind.out_dir) == bind
    groups, wide = presets.get("tiny-count-groups"), presets.get("tiny-bind-range")
    assert wide.init.endswith("tiny-bind-scenes/model") and wide.steps == 1500
    assert dataclasses.replace(wide, init=groups.init, steps=groups.steps, out_dir=groups.out_dir) == groups
    crops = presets.get("tiny-bind-crops")
    assert crops.init.endswith("tiny-bind-range/model") and crops.data.max_crops == 4 and crops.steps == 2000
    assert crops.data.sources == wide.data.sources and crops.data.seed not in other_seeds("tiny-bind-crops")
    assert [s.name for s in chain.path_to("tiny-bind-crops")[-5:]] == \
        ["tiny-ground-counts", "tiny-bind-circles", "tiny-bind-scenes", "tiny-bind-range", "tiny-bind-crops"]
    # pointing on the circles stage's images: the same images asked for point lists, from that stage
    points = presets.get("tiny-point-circles")
    assert points.init.endswith("tiny-bind-circles/model") and points.data.seed not in other_seeds("tiny-point-circles")
    for mine, theirs in ((points.data.sources, circles.data.sources), (points.data.validation, circles.data.validation)):
        assert [s.annotation_kinds for s in mine] == [("point",)]
        assert [dataclasses.replace(s, annotation_kinds=("qa",)) for s in mine] == list(theirs)
    assert same(dataclasses.replace(points, steps=circles.steps)) == same(circles) and points.steps == 1500
    assert [s.name for s in chain.path_to("tiny-point-circles")[-2:]] == ["tiny-bind-circles", "tiny-point-circles"]
    wider = presets.get("tiny-point-crops")
    assert wider.data.max_crops == 9 and points.data.max_crops == 1
    assert wider.data.seed not in other_seeds("tiny-point-crops")
    assert dataclasses.replace(wider, data=dataclasses.replace(wider.data, max_crops=1, seed=points.data.seed),
                               out_dir=points.out_dir) == points
    assert [s.name for s in chain.path_to("tiny-point-crops")[-2:]] == ["tiny-bind-circles", "tiny-point-crops"]
    faster = presets.get("tiny-point-connector")
    assert faster.optim.connector.lr == 10 * points.optim.connector.lr and faster.data.seed not in other_seeds(
        "tiny-point-connector")
    assert dataclasses.replace(faster, optim=points.optim, data=dataclasses.replace(faster.data, seed=points.data.seed),
                               out_dir=points.out_dir) == points
    assert [s.name for s in chain.path_to("tiny-point-connector")[-2:]] == ["tiny-bind-circles", "tiny-point-connector"]
    single = presets.get("tiny-point-single")
    assert single.steps == 1000 and single.data.seed not in other_seeds("tiny-point-single")
    for mine, theirs in ((single.data.sources, points.data.sources), (single.data.validation, points.data.validation)):
        assert [s.options["max_count"] for s in mine] == [1] and {s.seed for s in mine}.isdisjoint(s.seed for s in theirs)
        assert [dataclasses.replace(s, options=t.options, seed=t.seed) for s, t in zip(mine, theirs)] == list(theirs)
    assert dataclasses.replace(single, data=dataclasses.replace(single.data, sources=points.data.sources, seed=points.data.seed,
                               validation=points.data.validation), steps=points.steps, out_dir=points.out_dir) == points
    assert [s.name for s in chain.path_to("tiny-point-single")[-2:]] == ["tiny-bind-circles", "tiny-point-single"]
    pairs = presets.get("tiny-point-pairs")
    assert pairs.init.endswith("tiny-point-single/model") and pairs.data.seed not in other_seeds("tiny-point-pairs")
    assert [s.options["max_count"] for s in pairs.data.sources + pairs.data.validation] == [2, 2]
    assert {s.seed for s in pairs.data.sources}.isdisjoint(s.seed for s in single.data.sources + points.data.sources)
    assert [dataclasses.replace(s, options=t.options, seed=t.seed) for s, t in zip(pairs.data.sources, single.data.sources)] \
        == list(single.data.sources)
    assert [s.name for s in chain.path_to("tiny-point-pairs")[-3:]] == \
        ["tiny-bind-circles", "tiny-point-single", "tiny-point-pairs"]
    fours = presets.get("tiny-point-fours")
    assert fours.init.endswith("tiny-point-pairs/model") and fours.data.seed not in other_seeds("tiny-point-fours")
    assert dataclasses.replace(fours, init=points.init, data=dataclasses.replace(fours.data, seed=points.data.seed),
                               steps=points.steps, out_dir=points.out_dir) == points and fours.steps == 1000
    assert [s.name for s in chain.path_to("tiny-point-fours")[-4:]] == \
        ["tiny-bind-circles", "tiny-point-single", "tiny-point-pairs", "tiny-point-fours"]


def test_the_pointing_curriculum_goes_on_from_the_circles_to_the_generators_scenes():
    """tiny-point-scenes: tiny-bind-scenes' easy colour-group scenes (the same drawings) asked only for point
    lists, from tiny-point-fours; tiny-point-range: tiny-ground's easy and normal point scenes, the held-out set's
    kind, asked only for point lists, from it; tiny-point-range-crops: that at four crops, from it. Everything else
    is tiny-point-fours' (rates, batch, one crop)."""
    from molmo.train import presets
    fours, bind, ground = (presets.get(n) for n in ("tiny-point-fours", "tiny-count-bind", "tiny-ground"))
    scenes, wide = presets.get("tiny-point-scenes"), presets.get("tiny-point-range")
    for stage, parent, like in ((scenes, "tiny-point-fours", bind), (wide, "tiny-point-scenes", ground)):
        assert stage.init.endswith(f"{parent}/model") and stage.data.seed not in other_seeds(stage.out_dir.split("/")[-1])
        for mine, theirs in ((stage.data.sources, like.data.sources), (stage.data.validation, like.data.validation)):
            assert {s.annotation_kinds for s in mine} == {("point",)} and {s.kind for s in mine} == {"generator:points"}
            # the same scenes (so the same cached drawings) as the stage they come from
            kept = {s.name: s for s in theirs}
            assert [dataclasses.replace(s, annotation_kinds=kept[s.name].annotation_kinds, rate=kept[s.name].rate)
                    for s in mine] == [kept[s.name] for s in mine]
        assert dataclasses.replace(stage, init=fours.init, steps=fours.steps, out_dir=fours.out_dir,
                                   data=dataclasses.replace(stage.data, sources=fours.data.sources, seed=fours.data.seed,
                                                            validation=fours.data.validation)) == fours
    assert [s.name for s in scenes.data.sources] == ["points_easy"] and scenes.steps == 1000
    assert scenes.data.sources[0].options["max_count"] == 4 and scenes.data.sources[0].options["group_by"] == "colour"
    assert [s.name for s in wide.data.sources] == ["points_easy", "points"] and wide.steps == 1500
    assert "max_count" not in wide.data.sources[1].options  # the default 0-10, as the held-out set draws
    assert [s.name for s in chain.path_to("tiny-point-range")[-3:]] == \
        ["tiny-point-fours", "tiny-point-scenes", "tiny-point-range"]
    crops = presets.get("tiny-point-range-crops")
    assert crops.init.endswith("tiny-point-range/model") and crops.data.seed not in other_seeds("tiny-point-range-crops")
    assert crops.data.max_crops == 4 == presets.get("tiny-bind-crops").data.max_crops and crops.steps == 1000
    assert dataclasses.replace(crops, init=wide.init, steps=wide.steps, out_dir=wide.out_dir, data=dataclasses.replace(
        crops.data, max_crops=wide.data.max_crops, seed=wide.data.seed)) == wide
    assert [s.name for s in chain.path_to("tiny-point-range-crops")[-2:]] == ["tiny-point-range", "tiny-point-range-crops"]


def test_the_mixture_puts_the_counting_and_pointing_curricula_back_in_one_model():
    """tiny-mix-crops: tiny-bind-crops' sources (grouped counting scenes, clocks, charts) and tiny-point-range-crops'
    scenes asked for point lists and point-then-count, at the mixture's rates, four crops, from the pointing model."""
    from molmo.train import counting_presets, presets
    counts, points, mix = (presets.get(n) for n in ("tiny-bind-crops", "tiny-point-range-crops", "tiny-mix-crops"))
    assert mix.init.endswith("tiny-point-range/model") and mix.data.seed not in other_seeds("tiny-mix-crops")
    assert mix.data.max_crops == counts.data.max_crops == points.data.max_crops == 4
    for mine, count_like, point_like in ((mix.data.sources, counts.data.sources, points.data.sources),
                                         (mix.data.validation, counts.data.validation, points.data.validation)):
        by_name = {s.name: s for s in mine}
        assert len(by_name) == len(mine) == len(count_like) + len(point_like)  # no name twice
        for s in count_like:  # the counting stage's sources, only reweighted
            assert dataclasses.replace(by_name[s.name], rate=s.rate) == s
        for s in point_like:  # the same scenes (seed, options, so the same drawings), also asked point-then-count
            mixed = by_name[s.name.replace("points", "point_lists")]
            assert (mixed.kind, mixed.seed, mixed.options, mixed.size) == (s.kind, s.seed, s.options, s.size)
            assert mixed.annotation_kinds == ("point", "count")
    assert sum(s.rate for s in mix.data.sources) == pytest.approx(1.0)
    assert {s.name: s.rate for s in mix.data.sources} == counting_presets.MIX_RATES
    assert mix.optim == counts.optim and mix.steps == 1500
    assert [s.name for s in chain.path_to("tiny-mix-crops")[-3:]] == \
        ["tiny-point-scenes", "tiny-point-range", "tiny-mix-crops"]


def test_after_the_mixture_how_many_has_one_answer_form():
    """tiny-mix-numbers: tiny-mix-crops with its point scenes asked only for point lists (no point-then-count, whose
    "How many X are there?" clashed with the counting scenes' bare numbers), from it; tiny-mix-long: that mixture
    three times as long, from it. Nothing else changes."""
    from molmo.train import presets
    mix, numbers, long = (presets.get(n) for n in ("tiny-mix-crops", "tiny-mix-numbers", "tiny-mix-long"))
    for name, parent in (("tiny-mix-numbers", "tiny-mix-crops"), ("tiny-mix-long", "tiny-mix-numbers")):
        stage = presets.get(name)
        assert stage.init.endswith(f"{parent}/model") and stage.data.seed not in other_seeds(name)
        assert [s.name for s in chain.path_to(name)[-2:]] == [parent, name]
    for mine, theirs in ((numbers.data.sources, mix.data.sources), (numbers.data.validation, mix.data.validation)):
        asked = {s.annotation_kinds for s in mine if s.name.removeprefix("val_").startswith("point_lists")}
        assert asked == {("point",)}
        assert [dataclasses.replace(s, annotation_kinds=t.annotation_kinds) for s, t in zip(mine, theirs)] == list(theirs)
    assert (numbers.steps, long.steps) == (1000, 3000)
    assert dataclasses.replace(numbers, init=mix.init, steps=mix.steps, out_dir=mix.out_dir, data=dataclasses.replace(
        numbers.data, sources=mix.data.sources, validation=mix.data.validation, seed=mix.data.seed)) == mix
    assert dataclasses.replace(long, init=numbers.init, steps=numbers.steps, out_dir=numbers.out_dir,
                               data=dataclasses.replace(long.data, seed=numbers.data.seed)) == numbers


def test_status_gives_an_unfinished_stage_its_time_left_from_the_median_step(tmp_path):
    places = chain.Places(tmp_path / "runs", tmp_path / "artifacts")
    stage = chain.BY_NAME["tiny-ground"]
    run = places.run(stage)
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text("".join(json.dumps({"step": k, "loss": 1.0, "step_time": 30.0 if k % 10 == 0
                                                           else 4.0}) + "\n" for k in range(1, 101)))
    assert chain.progress(stage, places) == "at step 100"  # no config: no total to count down to
    (run / "config.json").write_text(json.dumps({"steps": 1000}))
    assert chain.progress(stage, places) == "at step 100 of 1000, ~1.0 h left at 4.0 s/step"


def test_the_ship_script_plots_the_stages_of_each_chain():
    spec = importlib.util.spec_from_file_location("ship_tiny_molmo", ROOT / "scripts" / "ship_tiny_molmo.py")
    ship = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ship)
    for stages in ship.CHAINS.values():  # each chain is the path to its last stage, first to last
        names = [name for name, _ in stages]
        assert [s.name for s in chain.path_to(names[-1])] == names
