"""The decoder check's symbolic scenes and its reading model (research.tiny_molmo.decoder_check)."""

import dataclasses
import json

import pytest
import torch

from research.tiny_molmo.decoder_check import COLOUR_WORDS, END, TOTAL, DecoderCheck, ReadingModel, draw_scenes, point_answers, run_check

CHECK = DecoderCheck(colours=3, max_count=4, grid=4)


def test_scene_codes_match_the_answers():
    codes, asked, answer = draw_scenes(CHECK, 50, torch.Generator().manual_seed(0))
    per_colour = codes[:, :, :3].sum(1)
    assert torch.equal(per_colour.gather(1, asked[:, None])[:, 0], answer.float())
    assert torch.equal(codes[:, :, 3], codes[:, :, :3].sum(-1))  # presence bit; one object per token at most
    assert codes[:, :, :3].sum(-1).max() == 1
    assert codes[:, :, 6].unique().numel() == 4  # the token's column on the 4x4 grid


def test_counts_in_every_token_are_the_scene_counts():
    check = dataclasses.replace(CHECK, counts_in_every_token=True)
    codes, _, _ = draw_scenes(check, 20, torch.Generator().manual_seed(1))
    expected = codes[:, :, :3].sum(1) / check.max_count
    assert torch.allclose(codes[:, :, 8:], expected[:, None, :].expand(-1, 16, -1))


def test_a_distractor_ramp_thins_only_the_other_colours():
    full, asked, answer = draw_scenes(CHECK, 40, torch.Generator().manual_seed(4))
    codes, asked_thin, answer_thin = draw_scenes(CHECK, 40, torch.Generator().manual_seed(4), others=0.5)
    assert torch.equal(asked, asked_thin) and torch.equal(answer, answer_thin)
    mine = torch.nn.functional.one_hot(asked, 3).bool()
    before, after = full[:, :, :3].sum(1), codes[:, :, :3].sum(1)
    assert torch.equal(after[mine], before[mine])
    assert torch.equal(after[~mine], torch.round(before[~mine] * 0.5))
    alone = draw_scenes(CHECK, 40, torch.Generator().manual_seed(4), others=0.0)[0][:, :, :3].sum(1)
    assert alone[~mine].sum() == 0 and torch.equal(alone[mine], before[mine])
    with pytest.raises(ValueError, match="distractor_ramp"):
        run_check(dataclasses.replace(CHECK, distractor_ramp=2.0), tokenizer=shipped_tokenizer())


def test_scenes_that_do_not_fit_are_refused():
    with pytest.raises(ValueError, match="do not fit"):
        draw_scenes(DecoderCheck(colours=5, max_count=4, grid=4), 1, torch.Generator())
    with pytest.raises(ValueError, match="colours must be"):
        draw_scenes(DecoderCheck(colours=12, max_count=1, grid=4), 1, torch.Generator())
    with pytest.raises(ValueError, match="single digits"):
        draw_scenes(DecoderCheck(colours=1, max_count=10, grid=4), 1, torch.Generator())


def test_point_then_count_answers_list_the_asked_objects_then_their_number():
    codes, asked, answer = draw_scenes(CHECK, 30, torch.Generator().manual_seed(3))
    seqs = point_answers(CHECK, codes, asked)
    for i, row in enumerate(seqs.tolist()):
        k = int(answer[i])
        places = [(row[2 * j], row[2 * j + 1]) for j in range(k)]
        tokens = [y * 4 + x for x, y in places]
        assert tokens == sorted(tokens) and all(codes[i, t, asked[i]] == 1 for t in tokens)
        assert row[2 * k:2 * k + 3] == [TOTAL, k, END] and set(row[2 * k + 3:]) <= {END}


def test_restated_prompts_end_with_the_colour_word_then_optionally_the_space():
    tok = shipped_tokenizer()
    plain, restated = ReadingModel(CHECK, tok).prompts.values()
    for k, word in enumerate(COLOUR_WORDS[:3]):
        assert restated[k, :-1].tolist() == plain[k].tolist() and restated[k, -1] == tok.encode(f" {word}")[-1]
    model = ReadingModel(CHECK, tok)
    codes, asked, _ = draw_scenes(CHECK, 4, torch.Generator().manual_seed(2))
    assert not torch.allclose(model(codes, asked), model(codes, asked, restated=True))
    spaced_check = dataclasses.replace(CHECK, space_before_digit=True)
    if len(tok.encode(" 3")) == 1:  # v3's tokenizer writes " 3" whole: there is no space token to end on
        with pytest.raises(ValueError, match="space token"):
            ReadingModel(spaced_check, tok)
        return
    spaced = ReadingModel(spaced_check, tok).prompts
    assert torch.equal(spaced[True][:, :-1], restated) and torch.equal(spaced[False][:, :-1], plain)
    assert (spaced[True][:, -1] == tok.encode(" 3")[0]).all() and (spaced[False][:, -1] == tok.encode(" 3")[0]).all()


@pytest.mark.parametrize("question_first", [False, True])
def test_answer_depends_on_the_question_and_the_image(question_first):
    model = ReadingModel(dataclasses.replace(CHECK, question_first=question_first), tokenizer=shipped_tokenizer())
    codes, asked, _ = draw_scenes(CHECK, 4, torch.Generator().manual_seed(2))
    logits = model(codes, asked)
    assert logits.shape == (4, 1, 12)  # after the question: 10 digits, " total", end of text
    assert not torch.allclose(logits, model(codes, (asked + 1) % 3))
    assert not torch.allclose(logits, model(codes.flip(0), asked))


def test_the_decoder_norms_queries_and_keys_as_tiny_molmo_unless_asked_not_to():
    tok = shipped_tokenizer()
    with_norms = ReadingModel(CHECK, tok).decoder.blocks[0].attn
    without = ReadingModel(dataclasses.replace(CHECK, qk_norm=False), tok).decoder.blocks[0].attn
    assert with_norms.q_norm is not None and with_norms.k_norm is not None
    assert without.q_norm is None and without.k_norm is None


def test_a_trivial_reading_is_learned():
    """Presence of one object, with the answer written in every token: far inside what the decoder can learn."""
    check = DecoderCheck(colours=1, max_count=1, grid=2, batch=16, steps=40, counts_in_every_token=True,
                         test_scenes=100)
    history = run_check(check, tokenizer=shipped_tokenizer())
    assert history[-1][1] >= 0.95


def test_point_then_count_trains_and_scores_the_greedy_answers_count():
    check = DecoderCheck(colours=1, max_count=1, grid=2, batch=16, steps=80, point_then_count=True, test_scenes=50)
    history = run_check(check, tokenizer=shipped_tokenizer())
    assert history[-1][1] >= 0.9  # one object or none: its place, " total", the count


def shipped_tokenizer():
    from molmo.assets import DEFAULT_MODEL_DIR
    from molmo.text.tokenizer import MolmoTokenizer
    return MolmoTokenizer.from_dir(DEFAULT_MODEL_DIR)


def test_real_tokens_are_a_checkpoints_two_views_cached_and_drawn_with_their_counts(tmp_path, monkeypatch):
    from molmo.assets import DEFAULT_MODEL_DIR
    from research.tiny_molmo import real_tokens
    tokens, counts = real_tokens.token_scenes(DEFAULT_MODEL_DIR, 6, seed=3, cache=tmp_path)
    assert tokens.shape[:2] == (6, 2) and tokens.dtype == torch.float32 and counts.shape == (6, 3)
    assert counts.min() >= 0 and counts.max() <= 4 and not torch.equal(tokens[0], tokens[1])
    monkeypatch.setattr(real_tokens, "encode_views", lambda *a, **k: pytest.fail("encoded again"))
    again, again_counts = real_tokens.token_scenes(DEFAULT_MODEL_DIR, 6, seed=3, cache=tmp_path)
    assert torch.equal(again, tokens) and torch.equal(again_counts, counts)
    pool = real_tokens.TokenPool(tokens, counts)
    batch, asked, answer = pool.draw(20, torch.Generator().manual_seed(0))
    rows = [next(i for i in range(6) if torch.equal(tokens[i], b)) for b in batch]
    assert answer.tolist() == [int(counts[r, a]) for r, a in zip(rows, asked)] and len(set(asked.tolist())) > 1
    _, red_only, red_counts = real_tokens.TokenPool(tokens, counts, asked_colours=1).all(torch.Generator())
    assert (red_only == 0).all() and torch.equal(red_counts, counts[:, 0])
    fixed = real_tokens.TokenPool(tokens, counts, fixed_questions=True)
    seen: dict[int, int] = {}
    for seed in range(5):  # one question per image, whichever batch draws it
        batch, asked, _ = fixed.draw(12, torch.Generator().manual_seed(seed))
        for b, a in zip(batch, asked.tolist()):
            assert seen.setdefault(next(i for i in range(6) if torch.equal(tokens[i], b)), a) == a


def test_earlier_stages_of_the_same_encoder_pass_are_cached_apart(tmp_path):
    from molmo.assets import DEFAULT_MODEL_DIR
    from molmo.model.config import MolmoConfig
    from research.tiny_molmo import real_tokens
    cfg = MolmoConfig.from_dict(json.loads((DEFAULT_MODEL_DIR / "config.json").read_text()))
    tokens, counts = real_tokens.token_scenes(DEFAULT_MODEL_DIR, 2, seed=3, cache=tmp_path)
    pooled, _ = real_tokens.token_scenes(DEFAULT_MODEL_DIR, 2, seed=3, cache=tmp_path, stage="pooled")
    vit, vit_counts = real_tokens.token_scenes(DEFAULT_MODEL_DIR, 2, seed=3, cache=tmp_path, stage="ViT")
    assert torch.equal(vit_counts, counts) and len(list(tmp_path.glob("*.safetensors"))) == 3
    assert pooled.shape == (2, 2, tokens.shape[2], cfg.vision.width)
    assert vit.shape == (2, 2, tokens.shape[2] * cfg.connector.pool_h * cfg.connector.pool_w,
                         cfg.vision.width * len(cfg.connector.vit_layers))
    with pytest.raises(ValueError, match="unknown stage"):
        real_tokens.token_scenes(DEFAULT_MODEL_DIR, 2, seed=3, cache=tmp_path, stage="logits")


def test_real_tokens_feed_the_checkpoints_decoder_unchanged_at_first(tmp_path):
    from molmo.assets import DEFAULT_MODEL_DIR
    from molmo.checkpoint.io import load_molmo
    check = DecoderCheck(tokens_from=str(DEFAULT_MODEL_DIR), decoder_from=str(DEFAULT_MODEL_DIR), token_images=8,
                         test_scenes=6, batch=4, steps=2, warmup=1, token_cache=str(tmp_path))
    history = run_check(check, tokenizer=shipped_tokenizer())
    assert len(history) == 2 and all(0.0 <= accuracy <= 1.0 for _, accuracy in history)
    shipped, _ = load_molmo(DEFAULT_MODEL_DIR)
    x = torch.randn(2, 3, shipped.config.llm.d_model)
    model = ReadingModel(check, shipped_tokenizer(), probe=x)
    torch.testing.assert_close(model.project(x), x)  # identity, not rescaled: the tokens the decoder was trained on
    torch.testing.assert_close(model.decoder.embed.embedding, shipped.llm.embed.embedding.float())
    with pytest.raises(ValueError, match="--max-count 4"):
        run_check(dataclasses.replace(check, max_count=3), tokenizer=shipped_tokenizer())


def test_the_molmo_format_wraps_rows_of_image_tokens_as_the_processor_does():
    tok = shipped_tokenizer()
    model = ReadingModel(dataclasses.replace(CHECK, molmo_image_block=True, molmo_prompt=True), tok)
    image = torch.randn(2, 16, model.decoder.embed.embedding.shape[1])
    block = model._image_block(image)
    ids = tok.image_token_ids
    embed = lambda i: model.decoder.embed(torch.tensor([i]))[0]  # noqa: E731
    assert block.shape == (2, 1 + 4 * 5 + 1, image.shape[-1])
    torch.testing.assert_close(block[:, 0], embed(ids.start).expand(2, -1))
    torch.testing.assert_close(block[:, -1], embed(ids.end).expand(2, -1))
    for row in range(4):
        torch.testing.assert_close(block[:, 1 + row * 5 + 4], embed(ids.col).expand(2, -1))
        torch.testing.assert_close(block[:, 1 + row * 5:1 + row * 5 + 4], image[:, row * 4:row * 4 + 4] + embed(ids.patch))
    bare = ReadingModel(dataclasses.replace(CHECK, molmo_image_block=True, patch_embedding=False), tok)
    torch.testing.assert_close(bare._image_block(image)[:, 1:5], image[:, :4])  # no <im_patch> embedding added
    no_cols = ReadingModel(dataclasses.replace(CHECK, molmo_image_block=True, block_specials=("start", "end")), tok)
    block = no_cols._image_block(image)
    assert block.shape == (2, 1 + 16 + 1, image.shape[-1])
    torch.testing.assert_close(block[:, 1:17], image + embed(ids.patch))
    cols_only = ReadingModel(dataclasses.replace(CHECK, molmo_image_block=True, block_specials=("col",)), tok)
    torch.testing.assert_close(cols_only._image_block(image)[:, 4], embed(ids.col).expand(2, -1))
    prompt = tok.decode(model.prompts[False][0].tolist())
    assert prompt == "How many red circles are there?" and tok.decode([int(model.vocab[3])]) == "3"
    two_views = torch.stack([image, image.flip(1)], dim=1)  # [n, views, T, d]
    blocks = model._image_block(image), model._image_block(image.flip(1))
    model.project = torch.nn.Identity()
    seen = {}
    hook = model.decoder.register_forward_pre_hook(lambda m, args: seen.update(x=args[0]))
    model(two_views, torch.tensor([0, 1]))
    hook.remove()
    torch.testing.assert_close(seen["x"][:, 1:1 + 2 * 22], torch.cat(blocks, dim=1))  # one block per view, in order
    role = ReadingModel(dataclasses.replace(CHECK, role_prompt=True), tok)
    assert tok.decode(role.prompts[False][2].tolist()) == " User: How many green circles are there? Assistant:"
    assert tok.decode([int(role.vocab[3])]) == " 3"
    with pytest.raises(ValueError, match="choose one"):
        ReadingModel(dataclasses.replace(CHECK, role_prompt=True, molmo_prompt=True), tok)
