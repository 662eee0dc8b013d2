"""Pure generation rules: budget steps, retries of cut-off answers, output limits,
template choice without an excerpt, chunk matching, and estimates."""

from __future__ import annotations

import pytest

from chalicelib.config import load_settings
from chalicelib.domain.budget import (
    budget_step,
    over_budget,
    remaining_budget,
    resumed_job_budget,
    start_refusal,
    thresholds_still_reached,
)
from chalicelib.domain.errors import PromptTemplateError
from chalicelib.domain.estimates import (
    DEFAULT_OUTPUT_RANGE,
    JobHistory,
    Observation,
    Prices,
    TierPrompt,
    estimate_cost,
    estimate_economy_time,
    estimate_standard_time,
    predicted_cost,
    retry_overhead,
)
from chalicelib.domain.models import (
    Chunk,
    Conversation,
    Dataset,
    GenerationLog,
    PromptTemplate,
    Taxonomy,
    TaxonomyEntry,
    Tier,
)
from chalicelib.domain.retries import plan_retry
from chalicelib.generation.prompts import (
    build_parameters,
    choose_template,
    excerpt_free_templates,
    generation_blockers,
)
from chalicelib.planning.planner import match_chunks
from chalicelib.planning.seed_templates import SEED_TEMPLATES

# --------------------------------------------------------------------------- budget


def test_a_call_jumping_past_several_thresholds_gives_each_in_order() -> None:
    step = budget_step(0.38, 0.40, [], running=True)  # 0% -> 95% in one call
    assert step.warn == (50, 75, 90) and not step.pause
    step = budget_step(0.42, 0.40, [50], running=True)  # past 100%: warnings, then pause
    assert step.warn == (75, 90) and step.pause


def test_budget_steps_are_given_once_and_a_stopped_job_does_not_pause() -> None:
    assert budget_step(0.31, 0.40, [50, 75], running=True).empty
    assert budget_step(0.50, 0.40, [50, 75, 90], running=False).empty
    assert budget_step(1.0, None, [], running=True).empty
    assert budget_step(0.0, 0.0, [], running=True).pause  # no budget left at all


def test_a_raised_budget_gives_the_warnings_it_is_below_again() -> None:
    assert thresholds_still_reached(0.40, 1.0) == []
    assert thresholds_still_reached(0.80, 1.0) == [50, 75]
    assert thresholds_still_reached(0.4, None) == []


def test_the_remaining_budget_and_what_is_over_it() -> None:
    assert remaining_budget(None, 3.0) is None
    assert remaining_budget(10.0, 2.5) == 7.5
    assert over_budget(7.51, 7.5) and not over_budget(7.5, 7.5)
    assert not over_budget(1e9, None)  # no budget: nothing is over it


def test_a_job_over_the_remaining_budget_starts_only_when_confirmed() -> None:
    assert start_refusal(over=False, remaining_usd=5.0, confirm=False) is None
    assert "confirm: true" in (start_refusal(over=True, remaining_usd=5.0, confirm=False) or "")
    assert start_refusal(over=True, remaining_usd=5.0, confirm=True) is None
    # a used-up budget refuses even a confirmed start
    assert "used up" in (start_refusal(over=True, remaining_usd=0.0, confirm=True) or "")
    assert start_refusal(over=False, remaining_usd=None, confirm=False) is None


def test_a_resumed_job_may_spend_what_it_spent_plus_what_the_dataset_has_left() -> None:
    assert resumed_job_budget(1.25, 10.0, 4.0) == 7.25
    assert resumed_job_budget(1.25, None, 4.0) is None
    with pytest.raises(ValueError, match="used up"):
        resumed_job_budget(1.25, 4.0, 4.0)


# --------------------------------------------------------------------------- retries


def _log(attempt: int, max_tokens: int, stop: str | None, turns: int = 12) -> GenerationLog:
    return GenerationLog(
        tenant_id="t",
        conversation_id="c",
        model="m",
        attempt=attempt,
        request_payload={"max_tokens": max_tokens},
        response_payload={"stop_reason": stop} if stop else None,
        parameters={"turn_target": str(turns)},
    )


def test_a_truncated_answer_is_retried_with_twice_the_room_up_to_the_limit() -> None:
    assert plan_retry([], 4096, 64_000, 12).max_tokens == 4096
    plan = plan_retry([_log(1, 4096, "max_tokens")], 4096, 64_000, 12)
    assert (plan.max_tokens, plan.turn_target) == (8192, None)
    plan = plan_retry([_log(1, 4096, "max_tokens"), _log(2, 8192, "max_tokens")], 4096, 10_000, 12)
    assert plan.max_tokens == 10_000  # capped at the model's output limit


def test_at_the_output_limit_a_retry_asks_for_fewer_turns_and_keeps_them() -> None:
    plan = plan_retry([_log(1, 8000, "max_tokens", 12)], 8000, 8000, 12)
    assert (plan.max_tokens, plan.turn_target) == (8000, 8)
    # A malformed answer after that keeps the larger budget and the shorter target.
    history = [_log(1, 4096, "max_tokens", 12), _log(2, 8000, "tool_use", 8)]
    plan = plan_retry(history, 4096, 8000, 12)
    assert (plan.max_tokens, plan.turn_target) == (8000, 8)
    # Calls without an answer (timeouts) teach nothing.
    assert plan_retry([_log(1, 4096, None)], 4096, 8000, 12).max_tokens == 4096


def test_output_limits_are_per_model_dated_ids_included_and_overridable() -> None:
    s = load_settings({})
    assert s.output_limit("claude-sonnet-4-6") == 128_000
    assert s.output_limit("claude-haiku-4-5-20251001") == 64_000
    assert s.output_limit("claude-unknown") == 64_000
    s = load_settings({"MODEL_OUTPUT_LIMITS_JSON": '{"claude-haiku-4-5": 8192}'})
    assert s.output_limit("claude-haiku-4-5") == 8192


# --------------------------------------------------------------------------- templates


def _taxonomy() -> Taxonomy:
    def entries(*names: str) -> list[TaxonomyEntry]:
        return [TaxonomyEntry(name=n, description=f"about {n}") for n in names]

    return Taxonomy(
        personas=entries("Retiree", "Founder"),
        emotions=entries("Calm", "Worried"),
        topics=entries("Fees", "Taxes"),
        intents=entries("Learn"),
        tones=entries("Warm"),
    )


def _templates() -> list[PromptTemplate]:
    return [
        PromptTemplate(
            tenant_id="t", template_id=f"tpl_seed_{i}", name=s.name, tier=s.tier, text=s.text
        )
        for i, s in enumerate(SEED_TEMPLATES, start=1)
    ]


def _conversation(**kw: object) -> Conversation:
    base: dict[str, object] = {
        "tenant_id": "t",
        "dataset_id": "d",
        "persona": "Retiree",
        "emotion": "Worried",
        "topic": "Fees",
        "intent": "Learn",
        "tone": "Warm",
        "tier": Tier.SCENARIO,
        "scenario": "A retiree asks about fees",
    }
    base.update(kw)
    return Conversation.model_validate(base)


def test_a_scenario_without_excerpt_uses_the_excerpt_free_template() -> None:
    dataset = Dataset(tenant_id="t", name="d", taxonomy=_taxonomy())
    templates = _templates()
    for i in range(20):  # whatever the A/B draw, never the template needing an excerpt
        conv = _conversation(conversation_id=f"conv_{i}")
        chosen = choose_template(templates, conv, build_parameters(conv, dataset, None))
        assert chosen.name == "Scenario from the business description"
    chunk = Chunk(chunk_id="k", document_id="doc", document_title="Fee schedule", text="1% a year.")
    for i in range(20):  # and one with an excerpt always uses it
        conv = _conversation(conversation_id=f"conv_{i}", chunk_id="k")
        chosen = choose_template(templates, conv, build_parameters(conv, dataset, chunk))
        assert chosen.name == "Scenario from source excerpt"


def test_a_conversation_no_template_can_fill_is_a_blocker() -> None:
    dataset = Dataset(tenant_id="t", name="d", taxonomy=_taxonomy())
    grounded_only = [t for t in _templates() if t.name != "Scenario from the business description"]
    conv = _conversation()
    with pytest.raises(PromptTemplateError) as e:
        choose_template(grounded_only, conv, build_parameters(conv, dataset, None))
    assert e.value.details["missing"] == ["chunk", "document_title"]
    blocked = generation_blockers(grounded_only, [conv, _conversation()], dataset, {})
    assert blocked == [{"tier": "scenario", "count": 2, "reason": e.value.message}]
    assert generation_blockers(_templates(), [conv], dataset, {}) == []
    assert [t.name for t in excerpt_free_templates(_templates())] == [
        "Scenario from the business description"
    ]


def test_chunks_for_conversations_planned_without_one() -> None:
    chunks = [
        Chunk(chunk_id="fees-a", document_id="d", text="x", topic="Fees", persona="Retiree"),
        Chunk(chunk_id="fees-b", document_id="d", text="x", topic="fees", persona="Founder"),
        Chunk(chunk_id="taxes", document_id="d", text="x", topic="Taxes"),
    ]
    a = _conversation(conversation_id="conv_a")
    b = _conversation(conversation_id="conv_b")
    other = _conversation(conversation_id="conv_c", topic="Retirement")
    chosen = match_chunks(chunks, [a, b, other])
    # Same topic only (case-insensitive); the closer persona first, then the unused one.
    assert chosen["conv_a"].chunk_id == "fees-a" and chosen["conv_b"].chunk_id == "fees-b"
    assert "conv_c" not in chosen
    # Uses by conversations that already have a chunk count.
    taken = _conversation(conversation_id="conv_x", chunk_id="fees-a")
    assert match_chunks(chunks, [a], [taken])["conv_a"].chunk_id == "fees-b"
    assert match_chunks(chunks, [b, a]) == chosen  # order of the request does not matter


# --------------------------------------------------------------------------- estimates

PRICES = Prices(
    input=3e-6, output=15e-6, cache_write=3.75e-6, cache_read=0.3e-6, batch_discount=0.5
)
PROMPTS = {
    "template": TierPrompt(1000, 300),
    "scenario": TierPrompt(1400, 300),
    "edge_case": TierPrompt(1100, 300),
}


def _obs(tier: str, output: int, seconds: float = 2.0) -> Observation:
    cost = predicted_cost(PROMPTS[tier], output, PRICES) * 1.1  # the model is 10% low
    return Observation(tier=tier, cost_usd=cost, output_tokens=output, seconds=seconds)


def test_observed_tiers_use_their_own_mean_and_others_are_calibrated() -> None:
    observed = [_obs("template", 600 + 20 * i) for i in range(10)]
    est = estimate_cost({"template": 20, "scenario": 10}, PROMPTS, observed, "dataset", PRICES)
    by_tier = {t.tier: t for t in est.per_tier}
    mean = sum(o.cost_usd for o in observed) / 10
    assert by_tier["template"].cost_per_conversation_usd == pytest.approx(mean)
    assert by_tier["template"].basis == "observed mean of 10 template conversations"
    # Scenario: its own (longer) prompt, the observed answer length, the 10% calibration.
    expected = predicted_cost(PROMPTS["scenario"], 690, PRICES) * 1.1
    assert by_tier["scenario"].cost_per_conversation_usd == pytest.approx(expected, rel=0.01)
    assert est.low_usd < est.total_usd < est.high_usd
    assert est.basis == "observed mean of 10 generated conversations of this dataset"


def test_defaults_span_short_to_long_answers() -> None:
    est = estimate_cost({"template": 10}, PROMPTS, [], "defaults", PRICES)
    low, high = (
        10 * predicted_cost(PROMPTS["template"], out, PRICES) for out in DEFAULT_OUTPUT_RANGE
    )
    assert (est.low_usd, est.high_usd) == (pytest.approx(low), pytest.approx(high))
    assert est.basis.startswith("defaults")


def test_retried_calls_raise_the_estimate_by_what_they_added() -> None:
    history = [JobHistory("standard", 1.2, 1.0, 10, 30.0, 10, 1)]
    assert retry_overhead(history) == pytest.approx(1.2)
    observed = [_obs("template", 600) for _ in range(5)]
    plain = estimate_cost({"template": 10}, PROMPTS, observed, "dataset", PRICES)
    retried = estimate_cost({"template": 10}, PROMPTS, observed, "dataset", PRICES, history)
    assert retried.total_usd == pytest.approx(plain.total_usd * 1.2)
    assert "plus 20% for retried calls" in retried.basis


def test_time_estimates_follow_concurrency_rate_limits_and_batch_polling() -> None:
    observed = [_obs("template", 600, seconds=3.0) for _ in range(5)]
    t = estimate_standard_time(50, observed, 10, 6000, 10**8, 600)
    assert t.seconds == pytest.approx(1.0 + 50 * 3.0 / 10)  # start-up + calls in parallel
    limited = estimate_standard_time(50, observed, 10, 60, 10**8, 600)
    assert limited.seconds == pytest.approx(1.0 + 50.0)  # 60 requests a minute
    # Two earlier jobs of different sizes: start-up and factor are fitted to them.
    history = [
        JobHistory("standard", 0.1, 0.1, 10, 9.0, 10, 1),  # bound 3 s
        JobHistory("standard", 0.5, 0.5, 50, 33.0, 10, 1),  # bound 15 s
    ]
    fitted = estimate_standard_time(100, observed, 10, 6000, 10**8, 600, history)
    assert fitted.seconds == pytest.approx(3.0 + 2.0 * 30.0)
    # Economy: at least one poll interval per execution chunk.
    economy = estimate_economy_time(6, 250, 30, processing_s=2.0)
    assert economy.seconds == 30 and economy.low == 30
    assert estimate_economy_time(600, 250, 30, processing_s=2.0).seconds == 90


def test_generate_item_outlives_the_llm_clients_worst_case_call() -> None:
    """A GenerateItem Lambda stopped mid-call wastes the call (the retry asks again):
    its timeout must cover the SDK's whole attempt budget (every retry timing out)."""
    import json
    from pathlib import Path

    from chalicelib.config import Settings

    config = json.loads((Path(__file__).resolve().parents[2] / ".chalice/config.json").read_text())
    timeout = config["lambda_functions"]["generate_item"]["lambda_timeout"]
    settings = Settings()
    worst_case = settings.llm_timeout_seconds * (settings.llm_sdk_retries + 1)
    assert timeout >= worst_case + 30, (timeout, worst_case)
