"""Decoder check: can the tiny language model learn to count from image tokens that are already perfect?

No pixels and no ViT: each scene is drawn symbolically on a grid of image tokens, and every token is an ideal
code (one-hot colour of the object whose centre falls in it, a presence bit, the centre's offset inside the
token, the token's grid position; optionally every colour's count). A learned linear map stands in for the
connector, scaled to the text embeddings' RMS as `init_weights` does. The `tiny-molmo` decoder, with the
project's initialisation and the shipped tokenizer, learns "How many <colour> objects are there?" and is scored
on unseen scenes. It isolates the language-model half of the grounding problem: what the decoder cannot learn
here in N steps it will not learn in N steps from a real ViT either.

    python -m research.tiny_molmo.decoder_check --colours 3 --max-count 4 --grid 4 --batch 32 --steps 1500
    python -m research.tiny_molmo.decoder_check --question-first       # question tokens before the image tokens
    python -m research.tiny_molmo.decoder_check --counts-in-every-token  # reading a count, not counting
    python -m research.tiny_molmo.decoder_check --point-then-count       # "x y" of each asked object, then the count
    python -m research.tiny_molmo.decoder_check --distractor-ramp 0.5    # other colours fade in over half the run
    python -m research.tiny_molmo.decoder_check --restate-steps 400      # "... Answer: red" then the count
    python -m research.tiny_molmo.decoder_check --restate-steps 400 --space-before-digit  # "... Answer: red", " ", count
    python -m research.tiny_molmo.decoder_check --restate-steps 300 --steps 600  # restated first, then the plain prompt
    python -m research.tiny_molmo.decoder_check --steps 400 --no-qk-norm  # the decoder without query/key norms
    python -m research.tiny_molmo.decoder_check --batch 32 --steps 400 \
        --tokens-from training/tiny-molmo/tiny-pretrain/model   # a checkpoint's real tokens of circle images
    python -m research.tiny_molmo.decoder_check --batch 32 --steps 400 \
        --decoder-from training/tiny-molmo/tiny-pretrain/model  # its caption-trained decoder, not a fresh one

`--tokens-from` replaces the ideal codes by the image tokens a frozen checkpoint makes of the grounding
check's circle images (`research.tiny_molmo.real_tokens`; 3 colours, 0-4 each; the global view's tokens, with
`--views 2` also the crop's); the linear map then starts as the identity. `--token-stage pooled` or `ViT` feeds
an earlier stage of the same encoder pass through a fresh linear map (the pooling's 16 tokens before the
projector, or the ViT's 64 patch features before the pooling).
`--decoder-from` starts the decoder from a checkpoint's language model instead of fresh. The other switches
remove one difference from the real pipeline each (`--freeze-projection`, `--bf16`, `--betas`/`--eps`,
`--fixed-questions`, `--molmo-image-block` with `--no-patch-embedding` and `--block-specials`, `--molmo-prompt`
or `--role-prompt`, `--views 2`); docs/tiny-molmo-research.md has the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from molmo.train.optim import learning_rate

COLOUR_WORDS = ("red", "blue", "green", "yellow", "purple", "orange", "pink", "brown", "gray", "black", "white")


@dataclass(frozen=True)
class DecoderCheck:
    colours: int = 3
    max_count: int = 4  # per colour; answers stay single digits (and grid <= 10 for point-then-count)
    grid: int = 4  # image tokens per side
    batch: int = 32
    steps: int = 300
    lr: float = 1e-3
    warmup: int = 50
    question_first: bool = False
    counts_in_every_token: bool = False
    # The answer lists the grid column and row of every object of the asked colour in token order, then " total"
    # and the count (Molmo's point-then-count, on the token grid); scored on the greedy answer's count.
    point_then_count: bool = False
    # A curriculum: the other colours' objects fade in over this fraction of the steps (none at step 1; 0: off).
    distractor_ramp: float = 0.0
    # For the first N steps the prompt ends with the asked colour word, so the count is read right after it;
    # then the plain prompt (N >= steps: restated throughout, and scored so).
    restate_steps: int = 0
    # The prompt ends with the space token, as in a real answer "red 3" when the tokenizer writes " 3" as " ", "3".
    space_before_digit: bool = False
    test_scenes: int = 400
    seed: int = 0
    # The tiny-molmo decoder norms queries and keys; without (as before), it stalls at about half.
    qk_norm: bool = True
    # A checkpoint whose frozen image tokens of circle images (`views` of them) replace the ideal codes
    # ("": ideal codes), and how many encoded images the training batches are drawn from (cached under token_cache).
    tokens_from: str = ""
    token_stage: str = "tokens"  # or "pooled" (before the projector) or "ViT" (patch features, before pooling)
    asked_colours: int = 0  # with tokens_from: ask only about the first N colours (1: red only, no binding)
    fixed_questions: bool = False  # with tokens_from: one asked colour per training image, drawn once
    # AdamW's betas and eps; the trainer's (recipe) defaults are (0.9, 0.95) and 1e-6
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    # The real pipeline's sequence instead of the bare one, in two halves, as the tiny-molmo processor writes it
    # (one view): the image block (<im_start>, rows of image tokens each added to the <im_patch> embedding and
    # closed by <im_col>, <im_end>), and the prompt ("How many red circles are there?", then the digit
    # without a space).
    molmo_image_block: bool = False
    patch_embedding: bool = True  # with molmo_image_block: add the <im_patch> embedding under each token
    # with molmo_image_block: which structural tokens the block keeps ("col": <im_col> after each row,
    # "start"/"end": <im_start> and <im_end> around it); the processor writes all three
    block_specials: tuple[str, ...] = ("start", "col", "end")
    molmo_prompt: bool = False
    # The fine-tuning turn instead: " User: How many red circles are there? Assistant:", then " 3" (one token)
    role_prompt: bool = False
    views: int = 1  # with tokens_from: the global view's tokens only, or (2) the crop's after them, as at one crop
    bf16: bool = False  # bf16 autocast, as the trainer uses where the CPU computes bf16 fast
    freeze_projection: bool = False  # the linear map stays at its start (the real pipeline's connector at ~1e-5)
    standardize: bool = False  # z-score each real feature on the training images first, as the token probe does
    token_images: int = 12800
    token_cache: str = "runs/decoder-check-tokens"
    # A checkpoint whose language model the decoder starts from ("": fresh, the project's initialisation).
    decoder_from: str = ""

    @property
    def code_dim(self) -> int:
        return self.colours + 5 + (self.colours if self.counts_in_every_token else 0)


def draw_scenes(check: DecoderCheck, n: int, gen: torch.Generator,
                others: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """codes [n, grid², code_dim], the asked colour [n] and its count [n]. Objects sit on distinct tokens.
    `others` < 1 keeps only that share of each other colour's objects (the first ones in token order)."""
    c, g = check.colours, check.grid
    if c * check.max_count > g * g:
        raise ValueError(f"{c} colours x {check.max_count} objects do not fit on {g}x{g} tokens")
    if not 1 <= c <= len(COLOUR_WORDS):
        raise ValueError(f"colours must be 1..{len(COLOUR_WORDS)} (one question word each), not {c}")
    if check.max_count > 9 or g > 10:
        raise ValueError("answers and grid places are single digits: max_count <= 9 and grid <= 10")
    counts = torch.randint(0, check.max_count + 1, (n, c), generator=gen)
    codes = torch.zeros(n, g * g, check.code_dim)
    ys, xs = torch.meshgrid(torch.arange(g), torch.arange(g), indexing="ij")
    codes[:, :, c + 3] = xs.flatten() / g
    codes[:, :, c + 4] = ys.flatten() / g
    for i in range(n):
        slots = torch.randperm(g * g, generator=gen).tolist()
        for colour in range(c):
            for _ in range(int(counts[i, colour])):
                t = slots.pop()
                codes[i, t, colour] = codes[i, t, c] = 1.0
                codes[i, t, c + 1:c + 3] = torch.rand(2, generator=gen)
    asked = torch.randint(0, c, (n,), generator=gen)
    if others < 1.0:
        for i in range(n):
            for colour in set(range(c)) - {int(asked[i])}:
                tokens = torch.nonzero(codes[i, :, colour]).flatten()
                codes[i, tokens[round(len(tokens) * others):], :c + 3] = 0.0
        counts = codes[:, :, :c].sum(1).long()
    if check.counts_in_every_token:
        codes[:, :, c + 5:] = counts[:, None, :].float() / check.max_count
    return codes, asked, counts.gather(1, asked[:, None])[:, 0]


class ReadingModel(nn.Module):
    """The tiny-molmo decoder reading projected codes, then a question; answers are scored over the digits.
    `probe` is a batch of codes, [n, T, code_dim] or [n, views, T, code_dim] (default: 64 ideal scenes); a fresh
    decoder's projection is scaled on it."""

    def __init__(self, check: DecoderCheck, tokenizer, probe: torch.Tensor | None = None):
        super().__init__()
        from molmo.model.config import tiny_molmo
        from molmo.model.init import init_weights
        from molmo.model.molmo import MolmoModel

        if check.decoder_from:
            from molmo.checkpoint.io import load_molmo
            molmo, _ = load_molmo(check.decoder_from)
            molmo = molmo.float()
        else:
            config = tiny_molmo()
            molmo = MolmoModel(dataclasses.replace(config, llm=dataclasses.replace(config.llm, qk_norm=check.qk_norm)))
            init_weights(molmo, seed=check.seed)
        self.decoder, self.check = molmo.llm, check
        if probe is None:
            probe = draw_scenes(check, 64, torch.Generator().manual_seed(check.seed))[0]
        code_dim, d_model = probe.shape[-1], molmo.config.llm.d_model
        self.project = nn.Linear(code_dim, d_model)
        unchanged = check.tokens_from and check.token_stage == "tokens"  # already the decoder's inputs
        with torch.no_grad():
            self.project.bias.zero_()
            if unchanged:
                if code_dim != d_model:
                    raise ValueError(f"{check.tokens_from}'s tokens have {code_dim} features, the decoder {d_model}")
                self.project.weight.copy_(torch.eye(d_model))
            else:
                self.project.weight.normal_(0, 1 / math.sqrt(code_dim))
            if not (unchanged and check.decoder_from):  # to the text embeddings' RMS, as the real connector starts
                scale = self.decoder.embed.embedding.pow(2).mean().sqrt() / self.project(probe).pow(2).mean().sqrt()
                self.project.weight.mul_(scale)
        space = []
        if check.space_before_digit:
            space = tokenizer.encode(" 3")[:-1]
            if len(space) != 1:
                raise ValueError("--space-before-digit needs a tokenizer that writes ' 3' as a space token, then '3'")
        if check.molmo_prompt and check.role_prompt:
            raise ValueError("--molmo-prompt and --role-prompt are two different prompts: choose one")
        question = " How many {} objects are there? Answer:"
        if check.molmo_prompt:
            question = "How many {} circles are there?"
        elif check.role_prompt:
            from molmo.text.prompts import format_prompt
            question = format_prompt("How many {} circles are there?")
        self.prompts = {restated: torch.tensor([tokenizer.encode(question.format(w) + (f" {w}" if restated else ""))
                                                + space for w in COLOUR_WORDS[:check.colours]])
                        for restated in (False, True)}
        # Answer vocabulary: digits 0..9, then " total" and the end of text.
        digit = "{}" if check.molmo_prompt else " {}"
        self.vocab = torch.tensor([tokenizer.encode(digit.format(k))[-1] for k in range(10)]
                                  + [tokenizer.encode(" total")[-1], tokenizer.eos_token_id])
        if check.molmo_image_block:
            ids = tokenizer.image_token_ids
            self.special = {"<im_start>": ids.start, "<im_end>": ids.end, "<im_patch>": ids.patch, "<im_col>": ids.col}
        self.bos = tokenizer.eos_token_id

    def forward(self, codes: torch.Tensor, asked: torch.Tensor, answer: torch.Tensor | None = None,
                restated: bool = False) -> torch.Tensor:
        """Logits over the answer vocabulary after the question and after each given answer token
        ([n, 1 + L, 12]; codes [n, T, code_dim] or [n, views, T, code_dim]; answer [n, L] indices into the answer
        vocabulary)."""
        n = len(codes)
        image = self.project(codes if codes.dim() == 4 else codes[:, None])
        if self.check.molmo_image_block:  # one block per view, as the processor writes them
            image = torch.cat([self._image_block(image[:, v]) for v in range(image.shape[1])], dim=1)
        else:
            image = image.flatten(1, 2)
        text = self.decoder.embed(self.prompts[restated][asked])
        bos = self.decoder.embed(torch.full((n, 1), self.bos))
        x = torch.cat([bos, text, image] if self.check.question_first else [bos, image, text], dim=1)
        if self.check.question_first:  # the answer is read after the image
            x = torch.cat([x, text[:, -1:]], dim=1)
        if answer is not None and answer.shape[1]:
            x = torch.cat([x, self.decoder.embed(self.vocab[answer])], dim=1)
        t = x.shape[1]
        logits, _ = self.decoder(x, torch.ones(n, t), torch.arange(t).expand(n, t))
        length = 1 + (answer.shape[1] if answer is not None else 0)
        return logits[:, -length:, self.vocab]

    def _image_block(self, image: torch.Tensor) -> torch.Tensor:
        """[n, T, d] projected tokens -> the processor's block: <im_start>, each row of sqrt(T) tokens added to
        the <im_patch> embedding and closed by <im_col>, <im_end>."""
        n, t, d = image.shape
        side = math.isqrt(t)
        embed = {k: self.decoder.embed(torch.tensor([v]))[0] for k, v in self.special.items()}
        keep = self.check.block_specials
        rows = (image + embed["<im_patch>"] if self.check.patch_embedding else image).view(n, side, side, d)
        if "col" in keep:
            rows = torch.cat([rows, embed["<im_col>"].expand(n, side, 1, d)], dim=2)
        parts = [rows.reshape(n, -1, d)]
        if "start" in keep:
            parts.insert(0, embed["<im_start>"].expand(n, 1, d))
        if "end" in keep:
            parts.append(embed["<im_end>"].expand(n, 1, d))
        return torch.cat(parts, dim=1)


TOTAL, END = 10, 11  # answer-vocabulary indices of " total" and the end of text


def point_answers(check: DecoderCheck, codes: torch.Tensor, asked: torch.Tensor) -> torch.Tensor:
    """[n, 2 * max_count + 3] point-then-count answers: column, row of each asked object in token order, then
    TOTAL, the count and END, padded with END."""
    g, width = check.grid, 2 * check.max_count + 3
    out = torch.full((len(codes), width), END)
    for i in range(len(codes)):
        tokens = torch.nonzero(codes[i, :, asked[i]]).flatten().tolist()
        seq = [v for t in tokens for v in (t % g, t // g)] + [TOTAL, len(tokens), END]
        out[i, :len(seq)] = torch.tensor(seq)
    return out


@torch.no_grad()
def answered_counts(model: ReadingModel, codes: torch.Tensor, asked: torch.Tensor,
                    restated: bool = False) -> torch.Tensor:
    """The count in each scene's answer: the first token (count mode), or the token after the greedy
    answer's TOTAL (point-then-count; -1 when it never says TOTAL)."""
    if not model.check.point_then_count:
        return model(codes, asked, restated=restated)[:, 0, :10].argmax(-1)
    answer = torch.zeros(len(codes), 0, dtype=torch.long)
    for _ in range(2 * model.check.max_count + 2):
        answer = torch.cat([answer, model(codes, asked, answer, restated)[:, -1].argmax(-1, keepdim=True)], dim=1)
    counts = torch.full((len(codes),), -1)
    for i, row in enumerate(answer.tolist()):
        if TOTAL in row[:-1]:
            counts[i] = row[row.index(TOTAL) + 1]
    return counts


def _real_token_scenes(check: DecoderCheck, train_gen: torch.Generator):
    """The test scenes and a batch drawer over a checkpoint's encoded circle images (`real_tokens`)."""
    from research.tiny_molmo.real_tokens import COLOURS, TokenPool, token_scenes
    if (check.colours, check.max_count) != (len(COLOURS), 4):
        raise ValueError(f"--tokens-from draws {len(COLOURS)} colours of 0-4 circles: use --colours "
                         f"{len(COLOURS)} --max-count 4")
    if check.views not in (1, 2):
        raise ValueError(f"--views is 1 (the global view) or 2 (and the crop), not {check.views}")
    if check.point_then_count or check.counts_in_every_token or check.distractor_ramp:
        raise ValueError("--tokens-from asks plain counts: no --point-then-count, --counts-in-every-token "
                         "or --distractor-ramp")
    cache = Path(check.token_cache)

    def scenes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        tokens, counts = token_scenes(check.tokens_from, n, seed, cache, stage=check.token_stage)
        return tokens[:, :check.views], counts

    pool = TokenPool(*scenes(check.token_images, check.seed + 10), asked_colours=check.asked_colours,
                     fixed_questions=check.fixed_questions)
    test = TokenPool(*scenes(check.test_scenes, check.seed + 11), asked_colours=check.asked_colours)
    if check.standardize:
        flat = pool.tokens.reshape(-1, pool.tokens.shape[-1])
        mean, std = flat.mean(0), flat.std(0) + 1e-6
        pool.tokens, test.tokens = (pool.tokens - mean) / std, (test.tokens - mean) / std
    return test.all(torch.Generator().manual_seed(check.seed + 2)), lambda n, others: pool.draw(n, train_gen)


def run_check(check: DecoderCheck, tokenizer=None, log_every: int = 0) -> list[tuple[int, float]]:
    """Train and return (step, exact accuracy on unseen scenes) at each evaluation (10 per run)."""
    if not 0.0 <= check.distractor_ramp <= 1.0:
        raise ValueError(f"distractor_ramp is a fraction of the steps (0..1), not {check.distractor_ramp}")
    torch.manual_seed(check.seed)
    if tokenizer is None:
        from molmo.assets import DEFAULT_MODEL_DIR
        from molmo.text.tokenizer import MolmoTokenizer
        tokenizer = MolmoTokenizer.from_dir(DEFAULT_MODEL_DIR)
    train_gen = torch.Generator().manual_seed(check.seed + 1)
    if check.tokens_from:
        test, draw = _real_token_scenes(check, train_gen)
    else:
        test = draw_scenes(check, check.test_scenes, torch.Generator().manual_seed(check.seed + 2))
        draw = lambda n, others: draw_scenes(check, n, train_gen, others)  # noqa: E731
    model = ReadingModel(check, tokenizer, probe=test[0][:64] if check.tokens_from else None)
    model.project.requires_grad_(not check.freeze_projection)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=check.lr, weight_decay=0.0,
                            betas=check.betas, eps=check.eps)
    if log_every:
        print(f"most frequent answer on the unseen scenes: {test[2].bincount().max().item() / len(test[2]):.3f}")
    history, every = [], max(1, check.steps // 10)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=check.bf16)
    for step in tqdm(range(1, check.steps + 1), desc="decoder check", unit="step", disable=not log_every):
        for group in opt.param_groups:  # warm-up then cosine to 10%, as the presets
            group["lr"] = learning_rate(step, check.lr, check.warmup, check.steps)
        others = min(1.0, step / (check.distractor_ramp * check.steps)) if check.distractor_ramp else 1.0
        codes, asked, answer = draw(check.batch, others)
        restated = step <= check.restate_steps  # evaluated below with the prompt it is trained on
        with autocast:
            if check.point_then_count:  # teacher forcing; the loss stops after the first END
                target = point_answers(check, codes, asked)
                logits = model(codes, asked, target[:, :-1], restated)
                after_end = (target == END).long().cumsum(1) > 1
                loss = nn.functional.cross_entropy(logits[~after_end], target[~after_end])
            else:
                loss = nn.functional.cross_entropy(model(codes, asked, restated=restated)[:, 0, :10], answer)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % every == 0 or step == check.steps:
            with autocast:
                accuracy = float((answered_counts(model, test[0], test[1], restated) == test[2]).float().mean())
            history.append((step, accuracy))
            if log_every:
                print(f"step {step} | loss {loss.item():.3f} | unseen exact {accuracy:.3f}", flush=True)
    return history


def main(argv: list[str] | None = None) -> int:
    from research.tiny_molmo.real_tokens import STAGES
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = DecoderCheck()
    for name in ("colours", "max_count", "grid", "batch", "steps", "seed", "restate_steps"):
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--distractor-ramp", type=float, default=defaults.distractor_ramp)
    p.add_argument("--space-before-digit", action="store_true")
    p.add_argument("--question-first", action="store_true")
    p.add_argument("--counts-in-every-token", action="store_true")
    p.add_argument("--point-then-count", action="store_true")
    p.add_argument("--tokens-from", default="", help="a checkpoint whose real tokens of circle images replace "
                   "the ideal codes")
    p.add_argument("--token-stage", choices=STAGES, default=defaults.token_stage,
                   help="with --tokens-from: the connector's output, its pooling's, or the ViT's patch features")
    p.add_argument("--asked-colours", type=int, default=0,
                   help="with --tokens-from: ask only about the first N colours (1: red only, no binding)")
    p.add_argument("--fixed-questions", action="store_true",
                   help="with --tokens-from: one question per training image, not a colour drawn per use")
    p.add_argument("--betas", type=float, nargs=2, default=defaults.betas)
    p.add_argument("--eps", type=float, default=defaults.eps)
    p.add_argument("--molmo-image-block", action="store_true",
                   help="the processor's image block (special tokens, <im_patch> embedding) around the tokens")
    p.add_argument("--no-patch-embedding", dest="patch_embedding", action="store_false",
                   help="with --molmo-image-block: the special tokens without the <im_patch> embedding under each token")
    p.add_argument("--block-specials", nargs="*", choices=("start", "col", "end"),
                   default=list(defaults.block_specials),
                   help="with --molmo-image-block: the structural tokens it keeps (default: all three)")
    p.add_argument("--molmo-prompt", action="store_true",
                   help="the processor's question and digit instead of the bare prompt's")
    p.add_argument("--role-prompt", action="store_true",
                   help="the fine-tuning turn (' User: How many red circles are there? Assistant:', then ' 3')")
    p.add_argument("--views", type=int, default=defaults.views,
                   help="with --tokens-from: 1, the global view's tokens, or 2, then the crop's (one crop's views)")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast, as the trainer on a CPU that computes bf16 fast")
    p.add_argument("--freeze-projection", action="store_true", help="train the decoder only, not the linear map")
    p.add_argument("--standardize", action="store_true", help="with --tokens-from: z-score each feature first")
    p.add_argument("--token-images", type=int, default=defaults.token_images)
    p.add_argument("--token-cache", default=defaults.token_cache)
    p.add_argument("--decoder-from", default="", help="a checkpoint whose language model the decoder starts from")
    p.add_argument("--no-qk-norm", dest="qk_norm", action="store_false",
                   help="the decoder without query/key norms (tiny-molmo before it had them)")
    args = vars(p.parse_args(argv))
    args["betas"], args["block_specials"] = tuple(args["betas"]), tuple(args["block_specials"])
    history = run_check(DecoderCheck(**args), log_every=1)
    print(f"final unseen exact {history[-1][1]:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
