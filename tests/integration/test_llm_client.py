"""The Anthropic adapter against the simulator: how many attempts of a call timed out.

The SDK retries a timed-out request by itself; the provider may have billed each one.
The adapter counts them (through the SDK's public middleware, once per HTTP attempt) so
the caller can log each as a call charged at its estimate.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chalicelib.domain.errors import (
    ProviderOverloadedError,
    ProviderRateLimitError,
    TransientGenerationError,
)
from chalicelib.llm.client import AnthropicLLMClient, LLMRequest, unanswered_attempts
from devstack.llm_simulator import LLMSimulator, SimulatorConfig

REQUEST = LLMRequest(
    model="claude-sonnet-4-6",
    system="You write training conversations.",
    prompt="Persona: Retiree\nTopic: Fees\nWrite 8 turns.",
    max_tokens=2048,
    temperature=0.5,
)


@pytest.fixture
def sim() -> Iterator[LLMSimulator]:
    simulator = LLMSimulator(SimulatorConfig(latency_seconds=0.0, timeout_hang_seconds=1.0, seed=3))
    simulator.start()
    try:
        yield simulator
    finally:
        simulator.stop()


def test_every_timed_out_attempt_of_a_failed_call_is_counted(sim: LLMSimulator) -> None:
    sim.configure(rate_timeout=1.0)
    client = AnthropicLLMClient("sim", sim.url, timeout=0.3, max_retries=2)
    with pytest.raises(TransientGenerationError) as e:
        client.create(REQUEST)
    assert unanswered_attempts(e.value) == (3, True)  # the first try and two SDK retries
    assert sim.stats()["faults"]["timeout"] == 3


def test_timed_out_attempts_before_an_answer_are_counted_on_the_response(
    sim: LLMSimulator,
) -> None:
    client = AnthropicLLMClient("sim", sim.url, timeout=0.3, max_retries=3)
    sim.configure(rate_timeout=0.5)
    seen = []
    for _ in range(8):
        sim.reset_stats()
        response = client.create(REQUEST)
        seen.append(response.unanswered_attempts)
        assert response.unanswered_attempts == sim.stats()["faults"]["timeout"]
    assert any(seen), seen  # some calls needed a retry after a timeout
    sim.configure(rate_timeout=0.0)
    assert client.create(REQUEST).unanswered_attempts == 0  # counted per call


def test_refusals_are_told_apart_from_other_errors(sim: LLMSimulator) -> None:
    """429 and 529 are the provider declining the call (the back-off counts them); a
    500 is a failure of the call itself (retried, but no verdict on the rate)."""
    client = AnthropicLLMClient("sim", sim.url, timeout=5, max_retries=0)
    expected = {
        "rate_429": ProviderRateLimitError,
        "rate_529": ProviderOverloadedError,
        "rate_500": TransientGenerationError,
    }
    for fault, error in expected.items():
        sim.configure(**{fault: 1.0})
        with pytest.raises(TransientGenerationError) as caught:
            client.create(REQUEST)
        assert type(caught.value) is error, (fault, caught.value)
        sim.configure(**{fault: 0.0})
