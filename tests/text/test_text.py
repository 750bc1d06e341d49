"""molmo.text: the facts every layer shares -- image special tokens, the prompt format, stop strings and the
context-length rule."""

from __future__ import annotations

import pytest

from molmo.text.context import PromptTooLongError, check_context_length
from molmo.text.prompts import assistant_turn, chat_prompt, format_prompt, user_turn
from molmo.text.special_tokens import IMAGE_TOKEN_NAMES, ImageTokenIds
from molmo.text.stops import cut_at_stop, first_stop, stop_holdback


def test_image_token_ids_round_trip_in_name_order():
    ids = ImageTokenIds.after_vocabulary(100)
    assert ids.to_mapping() == {"<im_start>": 100, "<im_end>": 101, "<im_patch>": 102, "<im_col>": 103,
                                "<|image|>": 104}
    assert ImageTokenIds.from_mapping(ids.to_mapping()) == ids and list(ids.to_mapping()) == list(IMAGE_TOKEN_NAMES)
    with pytest.raises(ValueError, match="missing \\['<im_col>'\\]"):
        ImageTokenIds.from_mapping({k: v for k, v in ids.to_mapping().items() if k != "<im_col>"})


def test_the_released_prompt_format():
    assert format_prompt("How many dogs?") == user_turn("How many dogs?") == " User: How many dogs? Assistant:"
    assert format_prompt("Q", "point_count") == " User: point_count: Q Assistant:"
    history = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "A?"},
               {"role": "assistant", "content": "a"}, {"role": "user", "content": [{"type": "text", "text": "B?"}]}]
    assert chat_prompt(history) == user_turn("A?") + assistant_turn("a") + user_turn("B?")
    with pytest.raises(ValueError, match="last message"):
        chat_prompt(history[:3])
    with pytest.raises(ValueError, match="unknown message role"):
        chat_prompt([{"role": "tool", "content": "x"}, {"role": "user", "content": "y"}])


def test_stop_strings_cut_at_the_earliest():
    assert first_stop("3 dogs. Next\n", ["\n", "."]) == 6
    assert cut_at_stop("3 dogs. Next", [".", ""]) == ("3 dogs", True)
    assert cut_at_stop("3 dogs", ["END"]) == ("3 dogs", False)
    assert stop_holdback(["END", "."]) == 2 and stop_holdback([]) == 0


def test_context_length_names_what_does_not_fit():
    check_context_length(1000, 24, 1024)
    check_context_length(10**6, 10, None)
    with pytest.raises(PromptTooLongError, match="prompt of 1000 tokens \\+ max_new_tokens 25 exceeds the model"):
        check_context_length(1000, 25, 1024)
    with pytest.raises(PromptTooLongError, match="example needs 2000 tokens but the limit is 1024"):
        check_context_length(2000, 0, 1024)
