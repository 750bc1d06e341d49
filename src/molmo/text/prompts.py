"""The released prompt format, written once: a user turn is `" User: <text> Assistant:"` and an answer is
`" <text>"` (every string carries its leading space), with an optional style prefix `"<style>: "`.
The formatter (training), the API, the server and the chat template all build prompts with these.

    format_prompt("How many dogs?")                  # " User: How many dogs? Assistant:"
    format_prompt("How many dogs?", "point_count")   # " User: point_count: How many dogs? Assistant:"
    chat_prompt([{"role": "user", "content": "Hi"}])  # " User: Hi Assistant:"
"""

from __future__ import annotations

from typing import Any


def user_turn(text: str) -> str:
    return f" User: {text} Assistant:"


def assistant_turn(text: str) -> str:
    return f" {text}"


def format_prompt(prompt: str, style: str | None = None) -> str:
    """One question in the released inference format, with the optional style prefix."""
    return user_turn(f"{style}: {prompt}" if style else prompt)


def chat_prompt(messages: list[dict[str, Any]]) -> str:
    """HF-style messages (content as a string or parts `{"type": "image"|"text"}`) -> prompt text; multi-turn
    histories become alternating user / assistant turns, system messages are dropped (Molmo has no system
    role). The last message must be the user's."""
    parts: list[str] = []
    for msg in messages:
        role = msg.get("role")
        content = msg.get("content", "")
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if p.get("type") == "text").strip()
        if role == "system":
            continue
        if role == "user":
            parts.append(user_turn(content))
        elif role == "assistant":
            parts.append(assistant_turn(content))
        else:
            raise ValueError(f"unknown message role {role!r}")
    if not parts or messages[-1].get("role") != "user":
        raise ValueError("the last message must come from the user")
    return "".join(parts)
