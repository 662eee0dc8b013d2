"""Turn an LLM answer into turns. Tool use first; a tolerant text parser as fallback.

The path taken is recorded on the conversation (``parse_path``) so the share of answers
that needed the fallback is visible.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.errors import MalformedResponseError
from chalicelib.domain.models import Turn
from chalicelib.llm.client import CONVERSATION_TOOL_NAME, LLMResponse

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


class TruncatedResponseError(MalformedResponseError):
    """The answer stopped at ``max_tokens``: retry with a larger budget or fewer turns."""


@dataclass
class ParsedConversation:
    title: str | None
    turns: list[Turn]
    parse_path: str  # tool_use | json | fenced | embedded


def _turns_from(obj: Any) -> tuple[str | None, list[Turn]]:
    if isinstance(obj, list):
        obj = {"turns": obj}
    if not isinstance(obj, dict):
        raise MalformedResponseError("answer is not a JSON object")
    raw_turns = obj.get("turns") or obj.get("conversation") or obj.get("messages")
    if not isinstance(raw_turns, list) or not raw_turns:
        raise MalformedResponseError("answer has no 'turns' list")
    turns: list[Turn] = []
    for i, raw in enumerate(raw_turns, start=1):
        if not isinstance(raw, dict):
            raise MalformedResponseError(f"turn {i} is not an object")
        role = str(raw.get("role", "")).strip().lower()
        role = {"human": "user", "client": "user", "advisor": "assistant", "gpt": "assistant"}.get(
            role, role
        )
        content = raw.get("content")
        if role not in ("user", "assistant"):
            raise MalformedResponseError(f"turn {i} has role '{raw.get('role')}'")
        if not isinstance(content, str):
            raise MalformedResponseError(f"turn {i} has no text content")
        turns.append(Turn(turn_number=i, role=role, content=content.strip()))
    title = obj.get("title")
    return (str(title) if title else None), turns


def _first_json_object(text: str) -> Any:
    """The first balanced {...} in prose, decoded; raises if none decodes."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"[{\[]", text):
        try:
            obj, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict | list):
            return obj
    raise MalformedResponseError("no JSON object found in the answer")


def parse_response(response: LLMResponse) -> ParsedConversation:
    if response.stop_reason == "max_tokens":
        raise TruncatedResponseError(
            "the answer was truncated at max_tokens (stop_reason max_tokens)"
        )
    for block in response.content:
        if block.get("type") == "tool_use" and block.get("name") == CONVERSATION_TOOL_NAME:
            title, turns = _turns_from(block.get("input"))
            return ParsedConversation(title, turns, "tool_use")
    text = "".join(b.get("text", "") for b in response.content if b.get("type") == "text").strip()
    if not text:
        raise MalformedResponseError("the answer is empty")
    try:
        title, turns = _turns_from(json.loads(text))
        return ParsedConversation(title, turns, "json")
    except json.JSONDecodeError:
        pass
    fence = _FENCE.search(text)
    if fence:
        try:
            title, turns = _turns_from(json.loads(fence.group(1)))
            return ParsedConversation(title, turns, "fenced")
        except json.JSONDecodeError:
            pass
    title, turns = _turns_from(_first_json_object(text))
    return ParsedConversation(title, turns, "embedded")
