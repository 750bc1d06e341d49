"""The context-length rule, checked in one place: a prompt of n tokens plus the tokens still to generate must
fit the model's positions. The processor checks it when it builds an example (with the caller's
max_new_tokens) and generation before it allocates its cache.

    check_context_length(prompt_tokens=900, max_new_tokens=200, context=1024)   # PromptTooLongError
"""

from __future__ import annotations


class PromptTooLongError(ValueError):
    """The tokenised example (plus the tokens to generate) does not fit in the model's context."""


def check_context_length(prompt_tokens: int, max_new_tokens: int, context: int | None) -> None:
    if context is None or prompt_tokens + max_new_tokens <= context:
        return
    if prompt_tokens > context:
        raise PromptTooLongError(f"example needs {prompt_tokens} tokens but the limit is {context}; "
                                 f"shorten the text or lower max_crops")
    raise PromptTooLongError(f"prompt of {prompt_tokens} tokens + max_new_tokens {max_new_tokens} exceeds the "
                             f"model context of {context}; lower max_new_tokens or max_crops")
