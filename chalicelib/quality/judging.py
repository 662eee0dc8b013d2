"""Running the judge on a conversation: cache, call, bill, and never fail the caller.

A judge verdict is advice. A provider error, a timeout or a malformed answer leaves the
conversation with its heuristic score and a judge result that says why there is no
verdict; the generation that produced the conversation is never retried because of it
(that would bill the generation call again).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Literal

from chalicelib.config import Settings
from chalicelib.domain.errors import (
    MalformedResponseError,
    PermanentGenerationError,
    TransientGenerationError,
)
from chalicelib.domain.models import (
    Conversation,
    Dataset,
    GenerationLog,
    JudgeResult,
    Turn,
)
from chalicelib.domain.ports import JudgementCache, SpendLog
from chalicelib.llm.client import LLMRequest, LLMResponse, unanswered_attempts
from chalicelib.llm.pricing import cost_usd
from chalicelib.quality import judge as j

log = logging.getLogger(__name__)

SIMULATOR_HEADER = "x-simulator"


class JudgeService:
    def __init__(
        self,
        settings: Settings,
        create: Callable[[LLMRequest], LLMResponse],
        cache: JudgementCache,
        spend: SpendLog,
    ) -> None:
        self.settings = settings
        self.create = create
        self.cache = cache
        self.spend = spend

    @property
    def model(self) -> str:
        return self.settings.judge_model

    def enabled_for(self, dataset: Dataset) -> bool:
        return self.settings.judge_enabled and dataset.judge_mode != "off"

    def simulated(self, response: LLMResponse | None = None) -> bool:
        if response is not None and SIMULATOR_HEADER in response.headers:
            return True
        return self.settings.llm_mode == "simulator"

    def prepare(
        self,
        conversation: Conversation,
        turns: Sequence[Turn],
        dataset: Dataset,
        chunk_text: str | None,
    ) -> tuple[j.JudgeInput, str]:
        data = j.JudgeInput.of(conversation, turns, dataset, chunk_text)
        return data, j.content_hash(data, self.model)

    def cached(self, tenant_id: str, digest: str) -> JudgeResult | None:
        hit = self.cache.get(tenant_id, digest)
        if hit is None or hit.error:
            return None
        return hit.model_copy(update={"cached": True, "cost_usd": 0.0})

    def judge(
        self,
        conversation: Conversation,
        turns: Sequence[Turn],
        dataset: Dataset,
        chunk_text: str | None = None,
        *,
        job_id: str | None = None,
    ) -> JudgeResult:
        """The verdict on ``turns``: from the cache, or one billed call."""
        data, digest = self.prepare(conversation, turns, dataset, chunk_text)
        hit = self.cached(conversation.tenant_id, digest)
        if hit is not None:
            return hit
        request = j.judge_request(data, self.model)
        estimate = self.estimate_per_conversation(sum(len(t.content) for t in turns) // 4)
        try:
            response = self.create(request)
        except (TransientGenerationError, PermanentGenerationError) as e:
            # A call that timed out may have run and been billed: charged at its estimate,
            # like a generation call (and so is each earlier attempt of the SDK that did).
            timeouts, last_timed_out = unanswered_attempts(e)
            self._bill(
                conversation,
                request,
                None,
                estimate if last_timed_out else 0.0,
                job_id,
                dataset,
                str(e),
                billing="estimated" if last_timed_out else "none",
            )
            for _ in range(timeouts - int(last_timed_out)):
                self._bill_estimated(conversation, request, estimate, job_id, dataset)
            return self._failed(digest, f"the judge call failed: {e}")
        for _ in range(response.unanswered_attempts):
            self._bill_estimated(conversation, request, estimate, job_id, dataset)
        return self.record(conversation, dataset, request, response, digest, job_id=job_id)

    def _bill_estimated(
        self,
        conversation: Conversation,
        request: LLMRequest,
        estimate: float,
        job_id: str | None,
        dataset: Dataset,
    ) -> None:
        self._bill(
            conversation,
            request,
            None,
            estimate,
            job_id,
            dataset,
            "timed out before an answer (the SDK retried it); charged at the estimate",
            billing="estimated",
        )

    def record(
        self,
        conversation: Conversation,
        dataset: Dataset,
        request: LLMRequest,
        response: LLMResponse,
        digest: str,
        *,
        job_id: str | None = None,
        batch: bool = False,
        log_key: tuple[str, datetime] | None = None,
    ) -> JudgeResult:
        """Bill an answered judge call once, parse it, cache a good verdict. ``log_key``
        (log id, time) makes a repeated recording of the same answer bill nothing."""
        cost = cost_usd(self.settings, request.model, response.usage, batch=batch)
        self._bill(conversation, request, response, cost, job_id, dataset, None, log_key)
        try:
            dims, summary = j.parse_judgement(response)
        except MalformedResponseError as e:
            return self._failed(digest, f"the judge's answer did not parse: {e}", cost)
        result = j.verdict(
            dims,
            summary,
            model=request.model,
            digest=digest,
            simulated=self.simulated(response),
            cost_usd=cost,
        )
        self.cache.put(conversation.tenant_id, result)
        return result

    def _failed(self, digest: str, message: str, cost: float = 0.0) -> JudgeResult:
        return JudgeResult(
            model=self.model,
            rubric_version=j.RUBRIC_VERSION,
            content_hash=digest,
            simulated=self.settings.llm_mode == "simulator",
            cost_usd=cost,
            error=message,
        )

    def _bill(
        self,
        conversation: Conversation,
        request: LLMRequest,
        response: LLMResponse | None,
        cost: float,
        job_id: str | None,
        dataset: Dataset,
        error: str | None,
        log_key: tuple[str, datetime] | None = None,
        billing: Literal["actual", "estimated", "none"] | None = None,
    ) -> None:
        usage = response.usage if response else None
        identity = {"log_id": log_key[0], "created_at": log_key[1]} if log_key else {}
        self.spend.record_spend(
            GenerationLog(
                **identity,
                tenant_id=conversation.tenant_id,
                conversation_id=conversation.conversation_id,
                job_id=job_id,
                model=request.model,
                request_payload=request.params(),
                response_payload=response.as_payload() if response else None,
                parameters={"purpose": "judge", "rubric": j.RUBRIC_VERSION},
                input_tokens=usage.input_tokens if usage else 0,
                output_tokens=usage.output_tokens if usage else 0,
                cache_creation_input_tokens=usage.cache_creation_input_tokens if usage else 0,
                cache_read_input_tokens=usage.cache_read_input_tokens if usage else 0,
                cost_usd=cost,
                duration_ms=response.duration_ms if response else 0,
                error_message=error,
                billing=billing or ("actual" if response is not None else "none"),
            ),
            job_id,
            dataset.dataset_id,
        )

    def estimate_per_conversation(self, output_tokens: int, *, batch: bool = False) -> float:
        """What judging one conversation of ``output_tokens`` costs (rubric + transcript in,
        a verdict out)."""
        price = self.settings.price(self.model)
        rubric_tokens = 900  # system prompt, tool schema and the plan lines
        cost = (
            (rubric_tokens + output_tokens) * price.input + j.JUDGE_OUTPUT_TOKENS * price.output
        ) / 1_000_000
        return cost * (price.batch_discount if batch else 1.0)
