"""Exact token counts for an export through the real anthropic SDK's ``count_tokens``,
answered by the offline Messages-API simulator: a bounded sample of calls, and the
export's statistics named after the counter."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import pytest

from chalicelib.domain.models import StoredTurn
from chalicelib.export.tokens import AnthropicTokenCounter, TokenTally
from devstack.llm_simulator import LLMSimulator, SimulatorConfig


@pytest.fixture
def sim() -> Iterator[LLMSimulator]:
    simulator = LLMSimulator(SimulatorConfig(latency_seconds=0.0, seed=7))
    simulator.start()
    try:
        yield simulator
    finally:
        simulator.stop()


def test_count_tokens_counts_a_sample_and_names_the_tokenizer(sim: LLMSimulator) -> None:
    client = anthropic.Anthropic(api_key="sim", base_url=sim.url, max_retries=0)
    counter = AnthropicTokenCounter(client, "claude-haiku-4-5")
    turns = [
        StoredTurn(1, "user", "How are the fees billed?"),
        StoredTurn(2, "assistant", "Quarterly."),
    ]
    direct = counter.count("You are kind.", [{"role": t.role, "content": t.content} for t in turns])
    assert direct > 0
    tally = TokenTally(counter=counter, sample_size=4)
    for i in range(10):
        tally.add("train", f"c{i}", "You are kind.", turns)
    stats = tally.statistics()
    assert sim.stats()["count_tokens"] == 1 + 4  # the direct call and the sample, no more
    assert stats["tokenizer"]["name"] == "anthropic count_tokens (claude-haiku-4-5)"
    assert stats["tokenizer"]["method"] == "calibrated" and stats["tokenizer"]["sample"] == 4
    assert set(tally.per_record().values()) == {direct}
    assert stats["splits"]["train"]["total"] == 10 * direct
