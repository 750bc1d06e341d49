"""The decoder check's symbolic scenes and its reading model (research.tiny_molmo.decoder_check)."""

import dataclasses

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
    spaced = ReadingModel(dataclasses.replace(CHECK, space_before_digit=True), tok).prompts
    for k, word in enumerate(COLOUR_WORDS[:3]):
        assert restated[k, :-1].tolist() == plain[k].tolist() and restated[k, -1] == tok.encode(f" {word}")[-1]
    assert torch.equal(spaced[True][:, :-1], restated) and torch.equal(spaced[False][:, :-1], plain)
    assert (spaced[True][:, -1] == tok.encode(" 3")[0]).all() and (spaced[False][:, -1] == tok.encode(" 3")[0]).all()
    model = ReadingModel(CHECK, tok)
    codes, asked, _ = draw_scenes(CHECK, 4, torch.Generator().manual_seed(2))
    assert not torch.allclose(model(codes, asked), model(codes, asked, restated=True))


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
