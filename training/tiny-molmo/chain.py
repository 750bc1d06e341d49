"""The tiny-molmo training chain: the five stages that make the embedded model (or, with `--to
tiny-sft-grounded`, the candidate's seven: two grounding stages before the mixture), run one after another in the
background, each resuming where it stopped, each finished stage packaged as a small artifact in this folder
(bf16 weights, its resolved config, metrics, the command that made it) so that a new machine or checkout goes
on from the last finished stage.

    python training/tiny-molmo/chain.py status     # each stage: committed / collected / finished / step k of N / not run
    python training/tiny-molmo/chain.py start           # the remaining stages, detached; logs in each run folder
    python training/tiny-molmo/chain.py start --to tiny-sft-grounded   # the candidate's chain instead
    python training/tiny-molmo/chain.py run             # the same in the foreground
    python training/tiny-molmo/chain.py run --pregenerate   # each stage's images drawn first with all CPUs
    python training/tiny-molmo/chain.py collect tiny-vision   # package a finished run (refuses to replace one)
    bash training/tiny-molmo/gpu_chain.sh "$OUT" [TARGET]   # the whole chain on a GPU machine, weights to $OUT

Run folders live under `molmo.train.runs.runs_root()` ($MOLMO_RUNS, default ~/.cache/molmo/runs). Each stage
starts from the previous stage's artifact here, not from its run folder, so the chain continues on a machine
that has only this repository. After the last stage the held-out sets (`python -m molmo.eval.heldout`, at the
training level and at the hard level) are scored with and without the image (`molmo eval --blind`) and the
scores go into the last artifact's `heldout.json`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from molmo.train.runs import RUN_LOCK as TRAINER_LOCK, runs_root

ARTIFACTS = Path(__file__).resolve().parent
LOCK = ".chain.pid"  # in a run folder while a chain (or a stage it adopted) trains it


@dataclass(frozen=True)
class Stage:
    name: str  # the `molmo train` preset and the run / artifact folder name
    vision: bool  # the dense vision stage (writes vit.safetensors) rather than the Molmo trainer (model/)
    init_flag: str = ""  # the override that takes the previous stage's weights
    previous: str = ""


STAGES = (Stage("tiny-vision", vision=True),
          Stage("tiny-vision-regions", vision=True, init_flag="--init_vit", previous="tiny-vision"),
          Stage("tiny-vision-clocks", vision=True, init_flag="--init_vit", previous="tiny-vision-regions"),
          Stage("tiny-pretrain", vision=False, init_flag="--init_vit", previous="tiny-vision-clocks"),
          Stage("tiny-sft", vision=False, init_flag="--init", previous="tiny-pretrain"))
# The candidate after the shipped model branches off after caption pre-training (`--to tiny-sft-grounded`).
CANDIDATE = (Stage("tiny-ground", vision=False, init_flag="--init", previous="tiny-pretrain"),
             Stage("tiny-ground-counts", vision=False, init_flag="--init", previous="tiny-ground"),
             Stage("tiny-sft-grounded", vision=False, init_flag="--init", previous="tiny-ground-counts"),
             # counting at four crops, from the counting stage (`--to tiny-count-crops`)
             Stage("tiny-count-crops", vision=False, init_flag="--init", previous="tiny-ground-counts"),
             # counting with several counted groups per scene (`--to tiny-count-groups`)
             Stage("tiny-count-groups", vision=False, init_flag="--init", previous="tiny-ground-counts"),
             # ... with groups of one shape that differ only in colour (`--to tiny-count-colours`)
             Stage("tiny-count-colours", vision=False, init_flag="--init", previous="tiny-ground-counts"),
             # ... in the grounding check's regime: easy scenes, 0-4 a group, its learning rates (`--to tiny-count-bind`)
             Stage("tiny-count-bind", vision=False, init_flag="--init", previous="tiny-ground-counts"),
             # the binding curriculum (`--to tiny-bind-range`): the grounding check's circles, its regime in the
             # mixture, then the full counting range
             Stage("tiny-bind-circles", vision=False, init_flag="--init", previous="tiny-ground-counts"),
             Stage("tiny-bind-scenes", vision=False, init_flag="--init", previous="tiny-bind-circles"),
             Stage("tiny-bind-range", vision=False, init_flag="--init", previous="tiny-bind-scenes"),
             # ... then at four crops (`--to tiny-bind-crops`; not yet run)
             Stage("tiny-bind-crops", vision=False, init_flag="--init", previous="tiny-bind-range"),
             # pointing on the circles stage's images, from it (`--to tiny-point-circles`)
             Stage("tiny-point-circles", vision=False, init_flag="--init", previous="tiny-bind-circles"),
             # ... at nine crops (`--to tiny-point-crops`)
             Stage("tiny-point-crops", vision=False, init_flag="--init", previous="tiny-bind-circles"),
             # ... with the connector learning ten times faster (`--to tiny-point-connector`; stopped at step 500)
             Stage("tiny-point-connector", vision=False, init_flag="--init", previous="tiny-bind-circles"),
             # ... one circle of each colour at most (`--to tiny-point-single`)
             Stage("tiny-point-single", vision=False, init_flag="--init", previous="tiny-bind-circles"),
             # ... then up to two of each colour, from it (`--to tiny-point-pairs`)
             Stage("tiny-point-pairs", vision=False, init_flag="--init", previous="tiny-point-single"),
             # ... then the circles stage's up to four, from it (`--to tiny-point-fours`)
             Stage("tiny-point-fours", vision=False, init_flag="--init", previous="tiny-point-pairs"),
             # ... then the generator's easy colour-group scenes, then its default scenes (`--to tiny-point-range`)
             Stage("tiny-point-scenes", vision=False, init_flag="--init", previous="tiny-point-fours"),
             Stage("tiny-point-range", vision=False, init_flag="--init", previous="tiny-point-scenes"),
             # ... then those scenes at four crops, tiny-bind-crops' layout (`--to tiny-point-range-crops`)
             Stage("tiny-point-range-crops", vision=False, init_flag="--init", previous="tiny-point-range"),
             # counting, pointing, clocks and charts in one mixture at four crops, from tiny-point-range
             # (`--to tiny-mix-crops`)
             Stage("tiny-mix-crops", vision=False, init_flag="--init", previous="tiny-point-range"),
             # the mixture with one answer form per question (`--to tiny-mix-numbers`)
             Stage("tiny-mix-numbers", vision=False, init_flag="--init", previous="tiny-mix-crops"),
             # ... and three times as many steps of it (`--to tiny-mix-long`)
             Stage("tiny-mix-long", vision=False, init_flag="--init", previous="tiny-mix-numbers"))
BY_NAME = {s.name: s for s in STAGES + CANDIDATE}


def path_to(target: str) -> tuple[Stage, ...]:
    """The stages that make `target`, first to last: its `previous` links followed back to the first stage."""
    path = [BY_NAME[target]]
    while path[0].previous:
        path.insert(0, BY_NAME[path[0].previous])
    return tuple(path)


@dataclass(frozen=True)
class Places:
    runs: Path
    artifacts: Path

    def run(self, stage: Stage) -> Path:
        return self.runs / stage.name

    def artifact(self, stage: Stage) -> Path:
        return self.artifacts / stage.name


def weights(stage: Stage, folder: Path) -> Path:
    """The file (vision stages) or checkpoint folder (trainer stages) a stage hands on, inside `folder`."""
    return folder / ("vit.safetensors" if stage.vision else "model")


def collected(stage: Stage, places: Places) -> bool:
    return (places.artifact(stage) / "stage.json").exists()


def in_git(stage: Stage, places: Places) -> bool:
    """Whether the artifact is tracked by the repository around it: only then does it outlive this machine."""
    marker = places.artifact(stage) / "stage.json"
    try:
        return subprocess.run(["git", "ls-files", "--error-unmatch", marker.name], cwd=marker.parent,
                              capture_output=True).returncode == 0
    except OSError:  # no git on this machine
        return False


def finished(stage: Stage, places: Places) -> bool:
    run = places.run(stage)
    return (run / "vision_config.json").exists() if stage.vision else (run / "model" / "config.json").exists()


def progress(stage: Stage, places: Places) -> str:
    if collected(stage, places):
        # an artifact git does not track is lost with its machine, so status must not call it committed
        return "committed" if in_git(stage, places) else "collected, not in git (only on this machine)"
    if finished(stage, places):
        return "finished, not collected"
    run = places.run(stage)
    metrics = run / "metrics.jsonl"
    rows = [json.loads(line) for line in metrics.read_text().splitlines()[-50:]] if metrics.exists() else []
    if not rows:
        return "not run"
    step, running = rows[-1]["step"], " (running)" if _lock_holder(run) else ""
    config = next((run / n for n in ("config.json", "vision_config.json") if (run / n).exists()), None)
    total = json.loads(config.read_text()).get("steps") if config else None
    times = sorted(r["step_time"] for r in rows if "step_time" in r)
    if not total or not times:
        return f"at step {step}{running}"
    per_step = times[len(times) // 2]  # the median: checkpoint saves and evaluations make some steps slow
    hours = (total - step) * per_step / 3600
    return f"at step {step} of {total}{running}, ~{hours:.1f} h left at {per_step:.1f} s/step"


def command(stage: Stage, places: Places, extra: tuple[str, ...] = ()) -> list[str]:
    cmd = [sys.executable, "-m", "molmo.train", stage.name, f"--out_dir={places.run(stage)}"]
    if stage.previous:
        cmd.append(f"{stage.init_flag}={weights(BY_NAME[stage.previous], places.artifact(BY_NAME[stage.previous]))}")
    return cmd + list(extra)


def shown(cmd: list[str], places: Places) -> str:
    """The command as a user would type it: `molmo train ...`, with paths relative to the repository root or
    to $MOLMO_RUNS."""
    text = " ".join(["molmo", "train", *cmd[3:]])
    return text.replace(str(places.artifacts.parent.parent) + "/", "").replace(str(places.runs), "$MOLMO_RUNS")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _lock_holder(run: Path) -> int | None:
    """The pid training this run folder now, if any: a chain that adopted it, or a trainer (which holds
    TRAINER_LOCK itself, so one left running by a killed chain is found too)."""
    for name in (LOCK, TRAINER_LOCK):
        text = (run / name).read_text().split() if (run / name).exists() else []
        if text and int(text[0]) != os.getpid() and _alive(int(text[0])):
            return int(text[0])
    return None


def train_stage(stage: Stage, places: Places, extra: tuple[str, ...] = (), pregenerate: int | None = None) -> None:
    """Train (or resume) one stage; a process already training its run folder is waited for, not doubled.
    `pregenerate` (processes, 0 = all CPUs): first draw the stage's generated images into the cache."""
    run = places.run(stage)
    run.mkdir(parents=True, exist_ok=True)
    if (pid := _lock_holder(run)) is not None:
        print(f"{stage.name}: waiting for pid {pid}, which is training {run}", flush=True)
        while _lock_holder(run) is not None:
            time.sleep(30)
    if finished(stage, places):
        return
    if stage.previous and not collected(BY_NAME[stage.previous], places):
        raise SystemExit(f"{stage.name} needs {stage.previous}'s artifact in {places.artifacts}; collect it first")
    cmd = command(stage, places, extra)
    (run / LOCK).write_text(f"{os.getpid()}\n")
    try:
        with open(run / "train.log", "a") as log:
            log.write(f"\n# {datetime.datetime.now().isoformat(timespec='seconds')} {' '.join(cmd)}\n")
            log.flush()
            print(f"{stage.name}: {' '.join(cmd)}  (log: {run / 'train.log'})", flush=True)
            code = 0
            if pregenerate is not None:
                code = subprocess.call([*cmd, f"--pregenerate={pregenerate}"], stdout=log, stderr=subprocess.STDOUT)
            code = code or subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT)
    finally:
        (run / LOCK).unlink(missing_ok=True)
    if code != 0:
        raise SystemExit(f"{stage.name} stopped with exit code {code}; see {run / 'train.log'}")
    (run / "command.txt").write_text(shown(cmd, places) + "\n")


def evaluate_heldout(stage: Stage, places: Places) -> dict:
    """Held-out scores of a trainer stage's model, with the image and blind (`molmo eval --blind`), on the
    held-out set at the training level and at the hard level no preset trains on, and on each level's
    target-group counts (`<name>-target-counts`)."""
    scores = {}
    for name, difficulty in (("heldout", "normal"), ("heldout-hard", "hard")):
        folder = places.runs / name
        if not (folder / "target_counts.jsonl").exists():  # sets built before it had target counts: redrawn
            subprocess.check_call([sys.executable, "-m", "molmo.eval.heldout", "--out", str(folder),
                                   "--difficulty", difficulty])
        for data, label in (("data.jsonl", name), ("target_counts.jsonl", f"{name}-target-counts")):
            for mode, flags in (("model", []), ("blind", ["--blind"])):
                out = places.run(stage) / f"eval-{label}-{mode}"
                subprocess.check_call([sys.executable, "-m", "molmo.cli", "eval", "--model",
                                       str(places.run(stage) / "model"), "--data", str(folder / data), "--out",
                                       str(out), *flags], stdout=subprocess.DEVNULL)
                scores[f"{label}/{mode}"] = json.loads((out / "metrics.json").read_text())
    return scores


def collect(stage: Stage, places: Places, replace: bool = False, scores: dict | None = None) -> Path:
    """Package a finished run folder as the stage's artifact: bf16 weights, resolved config, metrics, command."""
    run, target = places.run(stage), places.artifact(stage)
    if not finished(stage, places):
        raise SystemExit(f"{stage.name} has not finished in {run}")
    if collected(stage, places) and not replace:
        raise SystemExit(f"{target} already holds an artifact; replace it only with a better one (--replace)")
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    source = weights(stage, run)
    if stage.vision:
        state = load_file(str(source))
        save_file({k: v.to(torch.bfloat16).contiguous() for k, v in state.items()}, str(weights(stage, tmp)))
        config = json.loads((run / "vision_config.json").read_text())
    else:
        from molmo.checkpoint.io import load_molmo, save_state
        model, mcfg = load_molmo(source)
        extra = {n: source / n for n in ("tokenizer.json", "preprocessor_config.json") if (source / n).exists()}
        save_state({k: v.to(torch.bfloat16) for k, v in model.state_dict().items()}, mcfg, weights(stage, tmp), extra)
        config = json.loads((run / "config.json").read_text())
    (tmp / "train_config.json").write_text(json.dumps(config, indent=1) + "\n")
    shutil.copy(run / "metrics.jsonl", tmp / "metrics.jsonl")
    cmd = (run / "command.txt").read_text() if (run / "command.txt").exists() else shown(command(stage, places), places)
    (tmp / "command.txt").write_text(cmd.strip() + "\n")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    info = {"stage": stage.name, "steps": rows[-1]["step"] + (1 if stage.vision else 0),
            "precision": config.get("precision"), "elapsed_s": _elapsed(rows),
            "collected": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": " ".join(filter(None, (platform.machine(), platform.processor(), f"{os.cpu_count()} cpus"))),
            "torch": torch.__version__,
            "device": "cuda" if torch.cuda.is_available() else "cpu"}
    if scores is not None:
        (tmp / "heldout.json").write_text(json.dumps(scores, indent=1) + "\n")
    (tmp / "stage.json").write_text(json.dumps(info, indent=1) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    tmp.replace(target)
    return target


def _elapsed(rows: list[dict]) -> float | None:
    if rows and "elapsed_s" in rows[-1]:
        return rows[-1]["elapsed_s"]
    times = [r["step_time"] for r in rows if "step_time" in r]
    return round(sum(times), 1) if times else None


def run_chain(places: Places, stages: tuple[Stage, ...] = STAGES, extra: dict[str, tuple[str, ...]] | None = None,
              evaluate: bool = True, pregenerate: int | None = None) -> None:
    for stage in stages:
        if collected(stage, places):
            continue
        overrides = (extra or {}).get(stage.name, ())
        if pregenerate is not None and stage.vision:  # the trainer presets read the cache already
            overrides = ("--generated_cache=auto", *overrides)
        train_stage(stage, places, overrides, pregenerate)
        scores = evaluate_heldout(stage, places) if evaluate and stage is stages[-1] else None
        print(f"{stage.name}: collected -> {collect(stage, places, scores=scores)}", flush=True)


def start_detached(places: Places, argv: list[str]) -> int:
    """`run` in a new session (it survives the shell that started it); refuses to start a second chain."""
    places.runs.mkdir(parents=True, exist_ok=True)
    pid_file = places.runs / "chain.pid"
    if pid_file.exists() and _alive(int(pid_file.read_text().split()[0])):
        print(f"a chain is already running (pid {pid_file.read_text().split()[0]}); see {places.runs / 'chain.log'}")
        return 1
    log = open(places.runs / "chain.log", "a")
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "run", *argv], stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    pid_file.write_text(f"{proc.pid}\n")
    print(f"chain started (pid {proc.pid}); progress: {places.runs / 'chain.log'} and each stage's train.log")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["status", "start", "run", "collect"])
    parser.add_argument("stage", nargs="?", help="with collect: the stage to package")
    parser.add_argument("--runs", type=Path, default=None, help="run folders (default: $MOLMO_RUNS or "
                        "~/.cache/molmo/runs)")
    parser.add_argument("--artifacts", type=Path, default=ARTIFACTS, help="where finished stages are packaged")
    parser.add_argument("--to", default=STAGES[-1].name, choices=[s.name for s in STAGES + CANDIDATE if not s.vision],
                        help="the last stage: the shipped model's (default) or the candidate's (tiny-sft-grounded)")
    parser.add_argument("--replace", action="store_true", help="with collect: replace an existing artifact")
    parser.add_argument("--no-eval", action="store_true", help="skip the held-out evaluation after the last stage")
    parser.add_argument("--pregenerate", nargs="?", const=0, type=int, default=None, metavar="WORKERS",
                        help="before each stage, draw its generated images into the cache with WORKERS processes "
                             "(default all CPUs): for many-core machines, where drawing during training would keep "
                             "the GPU waiting")
    parser.add_argument("--set", action="append", default=[], metavar="STAGE:--key=value",
                        help="an extra override for one stage, e.g. tiny-sft:--steps=800 (repeatable)")
    args = parser.parse_args(argv)
    places = Places(args.runs or runs_root(), args.artifacts)
    stages = path_to(args.to)
    extra: dict[str, tuple[str, ...]] = {}
    for item in args.set:
        name, _, override = item.partition(":")
        if name not in BY_NAME or not override.startswith("--"):
            parser.error(f"--set {item!r}: expected STAGE:--key=value with STAGE one of {', '.join(BY_NAME)}")
        extra[name] = extra.get(name, ()) + (override,)
    if args.action == "status":
        for stage in stages:
            print(f"{stage.name:22s} {progress(stage, places)}")
        return 0
    if args.action == "collect":
        if args.stage not in BY_NAME:
            parser.error(f"collect needs a stage: {', '.join(BY_NAME)}")
        stage = BY_NAME[args.stage]
        scores = evaluate_heldout(stage, places) if stage is stages[-1] and not args.no_eval else None
        print(collect(stage, places, args.replace, scores))
        return 0
    if args.action == "start":
        forwarded = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "start"]
        return start_detached(places, forwarded)
    run_chain(places, stages, extra=extra, evaluate=not args.no_eval, pregenerate=args.pregenerate)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
