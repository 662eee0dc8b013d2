"""The LLM port and its adapter on the real ``anthropic`` SDK.

The same adapter talks to Claude (``ANTHROPIC_API_KEY``) or to the offline Messages-API
simulator (``base_url``); provider errors are translated into the workflow's error
classes by type, so the state machine can retry or catch them by name.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import anthropic
from anthropic import Middleware

from chalicelib.domain.errors import (
    PermanentGenerationError,
    ProviderOverloadedError,
    ProviderRateLimitError,
    TransientGenerationError,
)

CONVERSATION_TOOL_NAME = "record_conversation"

# The structured-output contract: the model fills this schema through tool use, so
# answers parse by construction; the tolerant text parser is the fallback.
CONVERSATION_TOOL: dict[str, Any] = {
    "name": CONVERSATION_TOOL_NAME,
    "description": "Record the complete training conversation.",
    "input_schema": {
        "type": "object",
        "properties": {
            "title": {"type": "string", "description": "A short title for the conversation"},
            "turns": {
                "type": "array",
                "minItems": 2,
                "items": {
                    "type": "object",
                    "properties": {
                        "role": {"type": "string", "enum": ["user", "assistant"]},
                        "content": {"type": "string"},
                    },
                    "required": ["role", "content"],
                },
            },
        },
        "required": ["title", "turns"],
    },
}


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


@dataclass
class LLMRequest:
    model: str
    system: str
    prompt: str
    max_tokens: int
    temperature: float | None
    use_tool: bool = True
    cache_system: bool = True
    tool: dict[str, Any] | None = None  # the forced tool; None: record_conversation

    def params(self) -> dict[str, Any]:
        system_block: dict[str, Any] = {"type": "text", "text": self.system}
        if self.cache_system:
            # The system prompt is the long part shared by every conversation of a dataset.
            system_block["cache_control"] = {"type": "ephemeral"}
        params: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "system": [system_block],
            "messages": [{"role": "user", "content": self.prompt}],
        }
        if self.use_tool:
            tool = self.tool or CONVERSATION_TOOL
            params["tools"] = [tool]
            params["tool_choice"] = {"type": "tool", "name": tool["name"]}
        return params


@dataclass
class LLMResponse:
    content: list[dict[str, Any]]
    stop_reason: str | None
    usage: Usage
    model: str
    request_id: str | None = None
    duration_ms: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    message_id: str | None = None  # the provider's id of this answer (stable in batch results)
    # Attempts of this call (the SDK's own retries) that timed out before an answer:
    # the provider may still have run and billed them.
    unanswered_attempts: int = 0

    def as_payload(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "stop_reason": self.stop_reason,
            "model": self.model,
            "request_id": self.request_id,
            "usage": self.usage.__dict__,
        }


@dataclass
class BatchStatus:
    batch_id: str
    ended: bool
    succeeded: int = 0
    errored: int = 0
    processing: int = 0


class LLMClient(Protocol):
    def create(self, request: LLMRequest) -> LLMResponse: ...

    def count_tokens(self, request: LLMRequest) -> int: ...

    def submit_batch(self, requests: list[tuple[str, LLMRequest]]) -> str: ...

    def batch_status(self, batch_id: str) -> BatchStatus: ...

    def batch_results(
        self, batch_id: str
    ) -> Iterator[tuple[str, LLMResponse | None, str | None]]: ...


def _retry_after(headers: Any) -> float | None:
    try:
        value = headers.get("retry-after")
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


class _UnansweredAttempts(Middleware):
    """Counts, per thread, the HTTP attempts of ``messages.create`` that timed out.

    The SDK retries a timeout by itself; the provider may have run (and billed) the
    request that timed out, so the caller logs each one as a possibly billed call.
    The middleware chain runs once per HTTP attempt, inside the SDK's retry loop.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def reset(self) -> None:
        self._local.timeouts = 0

    @property
    def timeouts(self) -> int:
        return int(getattr(self._local, "timeouts", 0))

    def handle(self, request: Any, call_next: Any) -> Any:
        try:
            return call_next(request)
        except anthropic.APITimeoutError:
            if str(request.url).rstrip("/").endswith("/messages"):
                self._local.timeouts = self.timeouts + 1
            raise


def unanswered_attempts(error: BaseException) -> tuple[int, bool]:
    """(attempts that timed out, whether the last one did) of a failed ``create``."""
    return int(getattr(error, "unanswered_attempts", 0)), bool(getattr(error, "timed_out", False))


def translate_error(e: Exception) -> Exception:
    """Provider error -> workflow error class (by type, never by message text)."""
    if isinstance(e, anthropic.RateLimitError):
        return ProviderRateLimitError(
            f"provider rate limit: {e.message}", retry_after=_retry_after(e.response.headers)
        )
    if isinstance(e, anthropic.APITimeoutError):
        return TransientGenerationError("provider request timed out")
    if isinstance(e, anthropic.APIConnectionError):
        return TransientGenerationError(f"provider connection error: {e}")
    if isinstance(e, anthropic.APIStatusError) and e.status_code == 529:
        return ProviderOverloadedError(f"provider overloaded (529): {e.message}")
    if isinstance(e, anthropic.APIStatusError):
        if e.status_code >= 500 or e.status_code in (408, 409):
            return TransientGenerationError(f"provider error {e.status_code}: {e.message}")
        return PermanentGenerationError(
            f"provider rejected the request ({e.status_code}): {e.message}"
        )
    return e


def _usage(u: Any) -> Usage:
    return Usage(
        input_tokens=int(getattr(u, "input_tokens", 0) or 0),
        output_tokens=int(getattr(u, "output_tokens", 0) or 0),
        cache_creation_input_tokens=int(getattr(u, "cache_creation_input_tokens", 0) or 0),
        cache_read_input_tokens=int(getattr(u, "cache_read_input_tokens", 0) or 0),
    )


def _response(message: Any, duration_ms: int, headers: dict[str, str]) -> LLMResponse:
    return LLMResponse(
        content=[block.model_dump(mode="json") for block in message.content],
        stop_reason=message.stop_reason,
        usage=_usage(message.usage),
        model=message.model,
        request_id=getattr(message, "_request_id", None) or headers.get("request-id"),
        duration_ms=duration_ms,
        headers=headers,
        message_id=getattr(message, "id", None),
    )


class AnthropicLLMClient:
    def __init__(
        self, api_key: str, base_url: str | None, timeout: float, max_retries: int
    ) -> None:
        self._unanswered = _UnansweredAttempts()
        self._client = anthropic.Anthropic(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            middleware=[self._unanswered],
        )
        self._send_temperature = True

    def _extra(self, request: LLMRequest) -> dict[str, Any]:
        # SDK 2.x no longer types sampling parameters; the spec's temperature is sent
        # as an extra field, and dropped for good if the API says the model refuses it.
        if request.temperature is None or not self._send_temperature:
            return {}
        return {"extra_body": {"temperature": request.temperature}}

    def create(self, request: LLMRequest) -> LLMResponse:
        return self.create_raw(request, request.params())

    def create_raw(self, request: LLMRequest, params: dict[str, Any]) -> LLMResponse:
        """``create`` with explicit request parameters (e.g. another tool schema)."""
        started = time.monotonic()
        self._unanswered.reset()
        try:
            try:
                raw = self._client.messages.with_raw_response.create(
                    **params, **self._extra(request)
                )
            except anthropic.BadRequestError as e:
                if "temperature" not in str(e.message).lower() or not self._send_temperature:
                    raise
                self._send_temperature = False
                raw = self._client.messages.with_raw_response.create(**params)
            message = raw.parse()
        except anthropic.AnthropicError as e:
            error = translate_error(e)
            # Read back by ``unanswered_attempts``: how many attempts of this call may
            # have been billed without an answer (the last one included if it timed out).
            error.unanswered_attempts = self._unanswered.timeouts  # type: ignore[attr-defined]
            error.timed_out = isinstance(e, anthropic.APITimeoutError)  # type: ignore[attr-defined]
            raise error from e
        headers = {
            k.lower(): v
            for k, v in raw.headers.items()
            if k.lower().startswith(
                ("anthropic-ratelimit", "request-id", "retry-after", "x-simulator")
            )
        }
        response = _response(message, int((time.monotonic() - started) * 1000), headers)
        response.unanswered_attempts = self._unanswered.timeouts
        return response

    def count_tokens(self, request: LLMRequest) -> int:
        params = request.params()
        params.pop("max_tokens", None)
        try:
            result = self._client.messages.count_tokens(**params)
        except anthropic.AnthropicError as e:
            raise translate_error(e) from e
        return int(result.input_tokens)

    def submit_batch(self, requests: list[tuple[str, LLMRequest]]) -> str:
        try:
            batch = self._client.messages.batches.create(
                requests=[{"custom_id": cid, "params": req.params()} for cid, req in requests]  # type: ignore[typeddict-item]
            )
        except anthropic.AnthropicError as e:
            raise translate_error(e) from e
        return str(batch.id)

    def batch_status(self, batch_id: str) -> BatchStatus:
        try:
            batch = self._client.messages.batches.retrieve(batch_id)
        except anthropic.AnthropicError as e:
            raise translate_error(e) from e
        counts = batch.request_counts
        return BatchStatus(
            batch_id=batch_id,
            ended=batch.processing_status == "ended",
            succeeded=counts.succeeded,
            errored=counts.errored + counts.expired + counts.canceled,
            processing=counts.processing,
        )

    def batch_results(self, batch_id: str) -> Iterator[tuple[str, LLMResponse | None, str | None]]:
        try:
            results = self._client.messages.batches.results(batch_id)
            for item in results:
                if item.result.type == "succeeded":
                    yield item.custom_id, _response(item.result.message, 0, {}), None
                else:
                    yield item.custom_id, None, f"batch request {item.result.type}"
        except anthropic.AnthropicError as e:
            raise translate_error(e) from e
