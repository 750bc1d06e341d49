"""Pre-processing semantics beyond the fixtures: tiling, token counts, the mask quirk, collation,
multi-annotation positions, image loading errors, tokenizers."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from molmo.image.loading import ImageError, load_image
from molmo.preprocess import MolmoProcessor, PreprocessorConfig, collate
from molmo.preprocess.crops import make_crops, select_tiling
from molmo.preprocess.layout import image_layout
from molmo.preprocess.processor import subsegment_positions
from molmo.text.context import PromptTooLongError
from molmo.text.prompts import chat_prompt, format_prompt
from molmo.text.tokenizer import CharTokenizer, train_bpe_tokenizer

CFG = PreprocessorConfig.released()
TOK = CharTokenizer(embedding_size=512, eos_token_id=511)


def tiling_of(h, w, max_crops=12):
    return select_tiling(h - 112, w - 112, 224, max_crops)


@pytest.mark.parametrize("hw,max_crops,want", [
    ((300, 451), 12, (1, 2)), ((400, 600), 12, (2, 3)), ((512, 512), 12, (2, 2)),
    ((800, 1200), 12, (3, 4)), ((800, 1200), 6, (2, 3)), ((1600, 250), 12, (7, 1)),
    ((90, 120), 12, (1, 1)), ((40, 56), 12, (1, 1)),
])
def test_tiling_examples_from_spec(hw, max_crops, want):
    assert tiling_of(*hw, max_crops) == want


@pytest.mark.parametrize("hw", [(300, 451), (400, 600), (512, 512), (1600, 250)])
def test_token_count_formula(hw):
    image = np.zeros((*hw, 3), np.uint8)
    crops = make_crops(image, CFG)
    tokens, idx = image_layout(crops, CFG, TOK.image_token_ids)
    r, c = crops.tiling
    assert len(tokens) == 160 + (8 * r + 4) * (8 * c + 5)
    # every <im_patch> of the sequence receives exactly one feature
    kept = idx[idx >= 0]
    assert len(set(kept.tolist())) == len(kept) == int((tokens == TOK.image_token_ids.patch).sum())


def test_without_column_tokens_rows_run_on_and_every_feature_still_lands_on_a_patch():
    image = np.zeros((400, 600, 3), np.uint8)
    crops = make_crops(image, CFG)
    with_cols, idx = image_layout(crops, CFG, TOK.image_token_ids)
    without, idx_without = image_layout(crops, CFG.replace(use_col_tokens=False), TOK.image_token_ids)
    r, c = crops.tiling
    assert TOK.image_token_ids.col not in without.tolist()
    assert len(with_cols) - len(without) == 12 + 8 * r + 4  # one <im_col> per row of each block
    assert without[0] == without[146] == TOK.image_token_ids.start and without[145] == TOK.image_token_ids.end
    assert (without[idx_without[idx_without >= 0]] == TOK.image_token_ids.patch).all()
    # each feature goes to the same <im_patch> (counted in order) with or without them; only positions shift
    def patch_rank(tokens, positions):
        return np.searchsorted(np.flatnonzero(tokens == TOK.image_token_ids.patch), positions)
    np.testing.assert_array_equal(idx >= 0, idx_without >= 0)
    np.testing.assert_array_equal(patch_rank(with_cols, idx[idx >= 0]),
                                  patch_rank(without, idx_without[idx_without >= 0]))


def test_mask_quirk_and_fixed_variant():
    image = np.full((100, 400, 3), 200, np.uint8)  # letter-boxed: padding rows at top and bottom
    released = make_crops(image, CFG)
    fixed = make_crops(image, CFG.replace(fix_image_padding=True))
    assert (released.image_masks[-1] == -1).all()
    np.testing.assert_array_equal(released.image_masks[:-1], fixed.image_masks[1:])
    assert fixed.image_masks[0].min() == 0 and fixed.image_masks[0].max() == 1  # global view is letter-boxed


def test_inference_sequence_layout():
    proc = MolmoProcessor(TOK, CFG)
    ex = proc.encode(np.zeros((300, 451, 3), np.uint8), prompt="Hi")
    ids = ex["input_ids"]
    assert ids[0] == TOK.bos_token_id and ids[1] == TOK.image_token_ids.start
    assert TOK.decode(ids[-len(" User: Hi Assistant:"):].tolist()) == " User: Hi Assistant:"
    assert ids[ex["image_input_idx"][0]].tolist() == [TOK.image_token_ids.patch] * 144
    with pytest.raises(PromptTooLongError, match="limit is 100"):
        MolmoProcessor(TOK, CFG, max_sequence_length=100).encode(np.zeros((300, 451, 3), np.uint8), prompt="Hi")


def test_multi_annotation_positions_and_weights():
    proc = MolmoProcessor(TOK, CFG.replace(base_image_input_size=(112, 112), overlap_margins=(2, 2)))
    lists = [[" User: a Assistant:", " b"], [" User: c Assistant:", " dd"]]
    ex = proc.encode(np.zeros((60, 60, 3), np.uint8), message_lists=lists,
                      multi_annotation_weighting="root_subsegments")
    sub, pos = ex["subsegment_ids"], ex["position_ids"]
    n_image = int((sub == 10000).sum())
    first2 = int(np.argmax(sub == 2))
    assert pos[first2] == n_image  # conversation 2 continues right after the image, as if alone
    assert np.allclose(ex["loss_masks"][ex["loss_masks"] > 0], np.sqrt(0.5))
    assert subsegment_positions(np.array([9, 9, 1, 1, 2])).tolist() == [0, 1, 2, 3, 2]


def test_collate_right_pads_ids_crops_and_text_only_rows():
    proc = MolmoProcessor(TOK, CFG.replace(base_image_input_size=(112, 112), overlap_margins=(2, 2)))
    a = proc.encode(np.zeros((300, 100, 3), np.uint8), prompt="x")
    b = proc.encode(None, prompt="a longer prompt")
    batch = collate([a, b])
    assert batch["input_ids"].shape == (2, max(len(a["input_ids"]), len(b["input_ids"])))
    assert (batch["input_ids"][1, len(b["input_ids"]):] == -1).all()
    assert (batch["images"][1] == -1).all() and (batch["image_input_idx"][1] == -1).all()
    assert torch.equal(batch["image_input_idx"][0, : a["images"].shape[0]], torch.from_numpy(a["image_input_idx"]))


def _png(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=kw.pop("format", "PNG"), **kw)
    return buf.getvalue()


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees
    data = _png(img, format="JPEG", exif=exif)
    assert load_image(data).shape == (40, 20, 3)


@pytest.mark.parametrize("mode", ["P", "CMYK", "L", "I;16", "RGBA", "LA"])
def test_modes_are_converted_to_rgb(mode):
    img = Image.new("RGB", (8, 6), (10, 200, 30)).convert(mode) if mode != "I;16" else Image.new("I;16", (8, 6), 65535)
    arr = load_image(_png(img, format="TIFF") if mode == "CMYK" else _png(img))
    assert arr.shape == (6, 8, 3) and arr.dtype == np.uint8


def test_bad_images_get_clear_errors(tmp_path):
    with pytest.raises(ImageError, match="empty"):
        load_image(b"")
    with pytest.raises(ImageError, match="not a readable image"):
        load_image(b"definitely not an image")
    data = _png(Image.new("RGB", (64, 64), (1, 2, 3)))
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(data[: len(data) // 2])
    with pytest.raises(ImageError, match="over the limit"):
        load_image(_png(Image.new("RGB", (300, 300))), max_pixels=10_000)
    with pytest.raises(ImageError, match="no such image file"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="zero size"):
        load_image(np.zeros((0, 5, 3), np.uint8))


def test_bpe_tokenizer_round_trip_and_specials(tmp_path):
    texts = ["What time is being shown? 10:25", "Counting the points shows a total of 3."] * 50
    tok = train_bpe_tokenizer(texts, vocab_size=300)
    s = " User: What time is shown? Assistant: 10:25"
    assert tok.decode(tok.encode(s)) == s
    ids = tok.image_token_ids
    base = tok.tokenizer.get_vocab_size(with_added_tokens=False)
    assert sorted([ids.start, ids.end, ids.patch, ids.col, ids.image]) == list(range(base, base + 5))
    tok.save(tmp_path)
    from molmo.text.tokenizer import MolmoTokenizer
    again = MolmoTokenizer.from_file(tmp_path / "tokenizer.json")
    assert again.encode(s) == tok.encode(s) and again.image_token_ids == ids


def test_bpe_tokenizer_splits_digits_and_keeps_the_space_before_one():
    texts = [f"There are {n} red circles at x=\"{n}{n + 1}.5\"." for n in range(10)] * 20
    tok = train_bpe_tokenizer(texts, vocab_size=300)
    pieces = lambda s: [tok.decode([i]) for i in tok.encode(s)]
    assert pieces(" 3") == [" 3"]
    assert pieces(" 12:58") == [" 1", "2", ":", "5", "8"]
    assert pieces("x=\"45.5\"")[-5:] == ["4", "5", ".", "5", '"']


def test_encode_takes_a_question_raw_text_or_chat_messages_alike():
    proc = MolmoProcessor(TOK, CFG)
    image = np.zeros((300, 451, 3), np.uint8)
    chat = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Hi"}]}]
    a = proc.encode(image, prompt="Hi")
    b = proc.encode(image, text=format_prompt("Hi"))
    c = proc.encode(image, chat=chat)
    assert chat_prompt(chat) == format_prompt("Hi") == " User: Hi Assistant:"
    for other in (b, c):
        assert a.keys() == other.keys() and all(np.array_equal(a[k], other[k]) for k in a)
    assert tuple(a["image_size"]) == (451, 300)  # (width, height) of the decoded image
    with pytest.raises(ValueError, match="exactly one of"):
        proc.encode(image, prompt="Hi", text=" User: Hi Assistant:")


def test_encode_leaves_room_for_the_tokens_to_generate():
    proc = MolmoProcessor(TOK, CFG, max_sequence_length=40)
    n = len(proc.encode(None, prompt="Hi")["input_ids"])  # 1 BOS + 20 characters
    proc.encode(None, prompt="Hi", max_new_tokens=40 - n)
    with pytest.raises(PromptTooLongError, match=f"prompt of {n} tokens \\+ max_new_tokens {41 - n} exceeds"):
        proc.encode(None, prompt="Hi", max_new_tokens=41 - n)

