"""The LLM simulator against the real ``anthropic`` SDK (127.0.0.1 only, no network)."""

from __future__ import annotations

import difflib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anthropic
import pytest

from devstack.llm_simulator import (
    SIMULATOR_NAME,
    LLMSimulator,
    PromptParams,
    SimulatorConfig,
    parse_prompt_params,
)

MODEL = "claude-sonnet-4-6"
TOOL_NAME = "record_conversation"
TOOL = {
    "name": TOOL_NAME,
    "description": "Record the generated conversation.",
    "input_schema": {
        "type": "object",
        "properties": {"title": {"type": "string"}, "turns": {"type": "array"}},
        "required": ["title", "turns"],
    },
}
SYSTEM = "You write realistic training conversations for a financial advisory firm."


def prompt_for(
    persona: str = "Retired teacher",
    emotion: str = "anxious",
    topic: str = "Required minimum distributions",
    **extra: str,
) -> str:
    lines = [
        "Write one training conversation.",
        f"Persona: {persona}",
        f"Emotion: {emotion}",
        f"Topic: {topic}",
        "Intent: understand the deadlines",
        "Tone: warm",
    ]
    lines += [f"{key.replace('_', ' ').capitalize()}: {value}" for key, value in extra.items()]
    return "\n".join(lines)


def tool_params(prompt: str | None = None, **overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 8192,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": prompt or prompt_for()}],
        "tools": [TOOL],
        "tool_choice": {"type": "tool", "name": TOOL_NAME},
    }
    params.update(overrides)
    return params


def text_params(prompt: str | None = None, **overrides: Any) -> dict[str, Any]:
    params = tool_params(prompt, **overrides)
    del params["tools"], params["tool_choice"]
    return params


def tool_input(message: Any) -> dict[str, Any]:
    (block,) = message.content
    assert block.type == "tool_use"
    assert isinstance(block.input, dict)
    return block.input


def text_of(message: Any) -> str:
    (block,) = message.content
    assert block.type == "text"
    return str(block.text)


def error_type(error: anthropic.APIStatusError) -> str:
    body = error.body
    assert isinstance(body, dict) and body["type"] == "error"
    return str(body["error"]["type"])


def conversation_text(turns: list[dict[str, str]]) -> str:
    return "\n".join(t["content"] for t in turns)


def strip_fences(text: str) -> str:
    text = text.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1].rsplit("```", 1)[0]
    return text


def assert_valid_conversation(payload: dict[str, Any]) -> None:
    assert isinstance(payload["title"], str) and 0 < len(payload["title"]) <= 90
    turns = payload["turns"]
    assert 8 <= len(turns) <= 16 and len(turns) % 2 == 0
    for index, turn in enumerate(turns):
        assert turn["role"] == ("user" if index % 2 == 0 else "assistant")
        assert len(turn["content"]) > 10


def control(sim: LLMSimulator, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{sim.url}{path}", data=data, method="GET" if body is None else "POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["x-simulator"] == SIMULATOR_NAME
        return json.loads(response.read())


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sim() -> Iterator[LLMSimulator]:
    simulator = LLMSimulator(SimulatorConfig(latency_seconds=0.0, seed=1234))
    simulator.start()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def client(sim: LLMSimulator) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="sim", base_url=sim.url, max_retries=0)


# --------------------------------------------------------------------------- answers


def test_tool_use_answer_is_a_valid_conversation(
    sim: LLMSimulator, client: anthropic.Anthropic
) -> None:
    raw = client.messages.with_raw_response.create(**tool_params())
    assert raw.headers["x-simulator"] == SIMULATOR_NAME
    assert raw.headers["request-id"].startswith("req_")
    message = raw.parse()

    assert message.model == MODEL
    assert message.stop_reason == "tool_use"
    (block,) = message.content
    assert block.type == "tool_use"
    assert block.name == TOOL_NAME and block.id.startswith("toolu_")
    assert isinstance(block.input, dict)
    assert_valid_conversation(block.input)
    text = conversation_text(block.input["turns"]).lower()
    assert "required minimum distributions" in text
    assert "retired teacher" in text
    assert "anxious" in text


def test_text_mode_answers_json_sometimes_fenced(client: anthropic.Anthropic) -> None:
    fenced = 0
    for i in range(15):
        message = client.messages.create(**text_params(prompt_for(topic=f"Topic number {i}")))
        assert message.stop_reason == "end_turn"
        (block,) = message.content
        assert block.type == "text"
        fenced += block.text.startswith("```json")
        assert_valid_conversation(json.loads(strip_fences(block.text)))
    assert 0 < fenced < 15  # about 20% of answers wrap the JSON in a fence


def test_prompt_parameters_are_parsed_from_line_starts() -> None:
    params = parse_prompt_params(
        "Please write it.\n- Persona: Small business owner\nTOPIC: Payroll taxes\n"
        "Edge case: user asks for a guarantee\nSource excerpt:\nPayroll is due monthly.\n",
        system_text="Emotion: frustrated\nTopic: ignored, the user text wins",
    )
    assert params == PromptParams(
        persona="Small business owner",
        emotion="frustrated",
        topic="Payroll taxes",
        edge_case="user asks for a guarantee",
        excerpt="Payroll is due monthly.",
    )


def test_conversations_follow_their_parameters(client: anthropic.Anthropic) -> None:
    def generate(prompt: str) -> str:
        message = client.messages.create(**tool_params(prompt))
        return conversation_text(tool_input(message)["turns"])

    nurse = generate(prompt_for("Night-shift nurse", "frustrated", "Student loan refinancing"))
    owner = generate(prompt_for("Bakery owner", "excited", "Opening a SEP IRA"))
    nurse_again = generate(
        prompt_for("Night-shift nurse", "frustrated", "Student loan refinancing")
    )

    assert "student loan refinancing" in nurse.lower() and "night-shift nurse" in nurse.lower()
    assert "SEP IRA" in owner and "bakery owner" in owner.lower()
    different = difflib.SequenceMatcher(None, nurse, owner).ratio()
    same_params = difflib.SequenceMatcher(None, nurse, nurse_again).ratio()
    assert different < 0.6
    assert nurse != nurse_again and same_params < 0.95


def test_edge_case_and_excerpt_show_up(client: anthropic.Anthropic) -> None:
    prompt = prompt_for(
        tier="edge_case",
        edge_case="client asks for a guaranteed return",
        source_excerpt="Withdrawals must start by April 1 of the year after you turn 73.",
    )
    message = client.messages.create(**tool_params(prompt))
    text = conversation_text(tool_input(message)["turns"])
    assert "guarantee" in text.lower()
    assert "April 1" in text


def test_requested_turn_count_is_honoured(client: anthropic.Anthropic) -> None:
    message = client.messages.create(**tool_params(prompt_for() + "\nWrite 14 turns in total."))
    assert len(tool_input(message)["turns"]) == 14


# --------------------------------------------------------------------------- usage


def test_usage_is_about_four_characters_per_token(client: anthropic.Anthropic) -> None:
    prompt = prompt_for()
    message = client.messages.create(**text_params(prompt))
    prompt_chars = len(SYSTEM) + len(prompt)
    assert message.usage.input_tokens == pytest.approx(prompt_chars / 4, abs=2)
    assert message.usage.output_tokens == pytest.approx(len(text_of(message)) / 4, abs=2)
    assert message.usage.cache_creation_input_tokens == 0
    assert message.usage.cache_read_input_tokens == 0

    counted = client.messages.count_tokens(
        model=MODEL, system=SYSTEM, messages=[{"role": "user", "content": prompt}]
    )
    assert counted.input_tokens == message.usage.input_tokens


def test_cache_control_prefix_is_written_then_read(client: anthropic.Anthropic) -> None:
    long_system = SYSTEM + " Policy detail. " * 200
    system = [{"type": "text", "text": long_system, "cache_control": {"type": "ephemeral"}}]
    first = client.messages.create(
        **tool_params(prompt_for(topic="Roth conversions"), system=system)
    )
    second = client.messages.create(**tool_params(prompt_for(topic="Annuities"), system=system))

    prefix_tokens = first.usage.cache_creation_input_tokens
    assert prefix_tokens is not None and prefix_tokens > 700  # tools + system, ~len/4
    assert first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_creation_input_tokens == 0
    assert second.usage.cache_read_input_tokens == prefix_tokens
    # The cached prefix is billed separately, so input_tokens is only the user part.
    assert first.usage.input_tokens < 100 and second.usage.input_tokens < 100


def test_output_longer_than_max_tokens_stops_at_max_tokens(client: anthropic.Anthropic) -> None:
    message = client.messages.create(**text_params(max_tokens=50))
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 50
    assert len(text_of(message)) <= 200


# --------------------------------------------------------------------------- faults


def test_429_carries_retry_after(sim: LLMSimulator, client: anthropic.Anthropic) -> None:
    sim.configure(rate_429=1.0, retry_after_seconds=2)
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(**tool_params())
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.response.headers["x-simulator"] == SIMULATOR_NAME
    assert error_type(caught.value) == "rate_limit_error"
    stats = sim.stats()
    assert stats["faults"]["429"] == 1 and stats["billed"] == 0


def test_529_is_the_sdks_overloaded_error(client: anthropic.Anthropic, sim: LLMSimulator) -> None:
    sim.configure(rate_529=1.0)
    with pytest.raises(anthropic.OverloadedError) as caught:
        client.messages.create(**tool_params())
    # OverloadedError subclasses InternalServerError, so generic 5xx handling still applies.
    assert isinstance(caught.value, anthropic.InternalServerError)
    assert caught.value.status_code == 529
    assert error_type(caught.value) == "overloaded_error"


def test_500_is_an_internal_server_error(client: anthropic.Anthropic, sim: LLMSimulator) -> None:
    sim.configure(rate_500=1.0)
    with pytest.raises(anthropic.InternalServerError) as caught:
        client.messages.create(**tool_params())
    assert not isinstance(caught.value, anthropic.OverloadedError)
    assert caught.value.status_code == 500
    assert error_type(caught.value) == "api_error"


def test_hang_trips_the_client_timeout(sim: LLMSimulator) -> None:
    sim.configure(rate_timeout=1.0, timeout_hang_seconds=2.0)
    client = anthropic.Anthropic(api_key="sim", base_url=sim.url, max_retries=0, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(anthropic.APITimeoutError):
        client.messages.create(**tool_params())
    assert time.monotonic() - started < 1.5
    assert sim.stats()["faults"]["timeout"] == 1


def test_malformed_output_is_not_json_even_in_tool_mode(
    client: anthropic.Anthropic, sim: LLMSimulator
) -> None:
    sim.configure(rate_malformed=1.0)
    for _ in range(4):
        message = client.messages.create(**tool_params())
        (block,) = message.content
        assert block.type == "text"
        with pytest.raises(json.JSONDecodeError):
            json.loads(strip_fences(block.text))
    stats = sim.stats()
    assert stats["faults"]["malformed"] == 4 and stats["billed"] == 4  # still billed


def test_a_malformed_judge_answer_is_text_not_a_server_error(
    client: anthropic.Anthropic, sim: LLMSimulator
) -> None:
    """The judge's tool has no turns to quote: a malformed answer to it is still an
    answer (billed text), never the simulator's own 500."""
    from chalicelib.quality.judge import JUDGE_TOOL, JUDGE_TOOL_NAME

    sim.configure(rate_malformed=1.0)
    for _ in range(6):
        message = client.messages.create(
            **tool_params(
                "Plan:\nPersona: Retiree\n\nConversation:\n[turn 1] USER: hi",
                tools=[JUDGE_TOOL],
                tool_choice={"type": "tool", "name": JUDGE_TOOL_NAME},
            )
        )
        (block,) = message.content
        assert block.type == "text" and block.text
    stats = sim.stats()
    assert stats["faults"]["malformed"] == 6 and stats["billed"] == 6


def test_truncated_output_stops_at_max_tokens(
    client: anthropic.Anthropic, sim: LLMSimulator
) -> None:
    full_turns = tool_input(client.messages.create(**tool_params()))["turns"]
    sim.configure(rate_truncated=1.0)
    tool_message = client.messages.create(**tool_params())
    assert tool_message.stop_reason == "max_tokens"
    assert len(tool_input(tool_message)["turns"]) < len(full_turns)  # turns are missing

    text_message = client.messages.create(**text_params())
    assert text_message.stop_reason == "max_tokens"
    with pytest.raises(json.JSONDecodeError):
        json.loads(strip_fences(text_of(text_message)))
    assert sim.stats()["billed"] == 3


def test_invalid_request_is_400(client: anthropic.Anthropic, sim: LLMSimulator) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(**tool_params(max_tokens=0))
    assert error_type(caught.value) == "invalid_request_error"
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(**tool_params(tool_choice={"type": "tool", "name": "other"}))
    # Shapes the SDK refuses to send are checked over plain HTTP.
    for body in ({"model": MODEL, "max_tokens": 10}, {"max_tokens": 10, "messages": []}):
        with pytest.raises(urllib.error.HTTPError) as http_error:
            control(sim, "/v1/messages", body)
        assert http_error.value.code == 400
        assert json.loads(http_error.value.read())["error"]["type"] == "invalid_request_error"
    assert sim.stats()["billed"] == 0


def test_rpm_limit_is_enforced_with_a_correct_retry_after() -> None:
    clock = FakeClock()
    with LLMSimulator(SimulatorConfig(latency_seconds=0, rpm_limit=3, seed=1), clock=clock) as sim:
        client = anthropic.Anthropic(api_key="sim", base_url=sim.url, max_retries=0)
        for i in range(3):
            raw = client.messages.with_raw_response.create(**text_params())
            assert raw.headers["anthropic-ratelimit-requests-limit"] == "3"
            assert raw.headers["anthropic-ratelimit-requests-remaining"] == str(2 - i)
            assert raw.headers["anthropic-ratelimit-requests-reset"].endswith("Z")
            clock.now += 10
        with pytest.raises(anthropic.RateLimitError) as caught:
            client.messages.create(**text_params())
        # The first request was 30 s ago, so its slot frees in 30 s.
        assert caught.value.response.headers["retry-after"] == "30"
        stats = sim.stats()
        assert stats["billed"] == 3 and stats["rate_limited"] == 1 and stats["requests"] == 4

        clock.now += 30.5  # the first request leaves the 60 s window
        client.messages.create(**text_params())
        assert sim.stats()["billed"] == 4


def test_otpm_limit_refuses_while_the_window_holds_the_output_tokens() -> None:
    clock = FakeClock()
    with LLMSimulator(SimulatorConfig(latency_seconds=0, seed=4), clock=clock) as sim:
        client = anthropic.Anthropic(api_key="sim", base_url=sim.url, max_retries=0)
        first = client.messages.create(**tool_params())
        per_answer = first.usage.output_tokens
        # Room for two answers: the third request finds the window full.
        sim.configure(otpm_limit=2 * per_answer)
        sim.reset_stats()
        client.messages.create(**tool_params())
        clock.now += 20
        client.messages.create(**tool_params())
        with pytest.raises(anthropic.RateLimitError) as caught:
            client.messages.create(**tool_params())
        assert "output tokens per minute" in str(caught.value)
        # The oldest answer leaves the window 40 s later; then there is room again.
        assert caught.value.response.headers["retry-after"] == "40"
        clock.now += 40.5
        client.messages.create(**tool_params())
        stats = sim.stats()
        assert stats["billed"] == 3 and stats["rate_limited"] == 1


def test_concurrent_requests_respect_the_rpm_limit() -> None:
    config = SimulatorConfig(latency_seconds=0.02, rpm_limit=5, seed=3)
    with LLMSimulator(config) as sim:
        client = anthropic.Anthropic(api_key="sim", base_url=sim.url, max_retries=0)

        def call(_: int) -> str:
            try:
                client.messages.create(**tool_params())
                return "ok"
            except anthropic.RateLimitError:
                return "429"

        with ThreadPoolExecutor(max_workers=8) as pool:
            outcomes = list(pool.map(call, range(12)))
        assert outcomes.count("ok") == 5 and outcomes.count("429") == 7
        stats = sim.stats()
        assert (stats["requests"], stats["billed"], stats["rate_limited"]) == (12, 5, 7)


# --------------------------------------------------------------------------- batches


def test_batches_round_trip_with_the_sdk(sim: LLMSimulator, client: anthropic.Anthropic) -> None:
    sim.configure(latency_seconds=0.01)
    requests: list[Any] = [
        {"custom_id": f"conv-{i}", "params": tool_params(prompt_for(topic=f"Topic {i}"))}
        for i in range(3)
    ]
    requests.append({"custom_id": "bad", "params": {"model": MODEL, "messages": []}})
    batch = client.messages.batches.create(requests=requests)
    assert batch.id.startswith("msgbatch_")
    assert batch.processing_status == "in_progress"
    assert batch.request_counts.processing == 4

    deadline = time.monotonic() + 5
    while batch.processing_status != "ended" and time.monotonic() < deadline:
        time.sleep(0.02)
        batch = client.messages.batches.retrieve(batch.id)
    assert batch.processing_status == "ended"
    assert batch.ended_at is not None and batch.results_url is not None
    counts = batch.request_counts
    assert (counts.succeeded, counts.errored, counts.processing) == (3, 1, 0)

    results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    assert set(results) == {"conv-0", "conv-1", "conv-2", "bad"}
    for i in range(3):
        result = results[f"conv-{i}"]
        assert result.type == "succeeded"
        message = result.message
        assert message.usage.service_tier == "batch"
        assert_valid_conversation(tool_input(message))
    assert results["bad"].type == "errored"
    assert sim.stats()["batch_items"] == 3


def test_batch_cancel_marks_unprocessed_requests_canceled(
    sim: LLMSimulator, client: anthropic.Anthropic
) -> None:
    sim.configure(latency_seconds=0.2)
    requests: list[Any] = [{"custom_id": f"c{i}", "params": tool_params()} for i in range(5)]
    batch = client.messages.batches.create(requests=requests)
    canceled = client.messages.batches.cancel(batch.id)
    assert canceled.processing_status in ("canceling", "ended")
    assert canceled.cancel_initiated_at is not None
    deadline = time.monotonic() + 3
    while batch.processing_status != "ended" and time.monotonic() < deadline:
        time.sleep(0.05)
        batch = client.messages.batches.retrieve(batch.id)
    assert batch.request_counts.canceled >= 4


# --------------------------------------------------------------- determinism and control


def run_sequence(seed: int) -> list[str]:
    config = SimulatorConfig(latency_seconds=0, seed=seed, rate_429=0.2, rate_500=0.2)
    outcomes: list[str] = []
    with LLMSimulator(config) as sim:
        client = anthropic.Anthropic(api_key="sim", base_url=sim.url, max_retries=0)
        for i in range(12):
            try:
                message = client.messages.create(**tool_params(prompt_for(topic=f"T{i % 3}")))
                outcomes.append(json.dumps(tool_input(message), sort_keys=True))
            except anthropic.APIStatusError as e:
                outcomes.append(str(e.status_code))
    return outcomes


def test_same_seed_replays_the_same_faults_and_text() -> None:
    first, second, other = run_sequence(7), run_sequence(7), run_sequence(8)
    assert first == second
    assert first != other
    assert {"429", "500"} & set(first)  # some faults were drawn
    assert any(o.startswith("{") for o in first)


def test_reset_rewinds_the_sequence(sim: LLMSimulator, client: anthropic.Anthropic) -> None:
    def run() -> list[Any]:
        return [tool_input(client.messages.create(**tool_params())) for _ in range(2)]

    before = run()
    assert before[0] != before[1]
    control(sim, "/_sim/reset", {})
    assert run() == before


def test_control_endpoints(sim: LLMSimulator, client: anthropic.Anthropic) -> None:
    client.messages.create(**tool_params())
    stats = control(sim, "/_sim/stats")
    assert stats["simulator"] == SIMULATOR_NAME
    assert stats["requests"] == 1 and stats["billed"] == 1 and stats["rate_limited"] == 0
    assert set(stats["faults"]) == {"429", "529", "500", "timeout", "malformed", "truncated"}
    assert stats["usage"]["output_tokens"] > 0

    config = control(sim, "/_sim/config", {"rate_529": 1.0, "rpm_limit": 100})
    assert config["rate_529"] == 1.0 and sim.config.rpm_limit == 100
    with pytest.raises(anthropic.OverloadedError):
        client.messages.create(**tool_params())
    assert control(sim, "/_sim/stats")["faults"]["529"] == 1

    with pytest.raises(urllib.error.HTTPError) as caught:
        control(sim, "/_sim/config", {"rate_500": 2})
    assert caught.value.code == 400
    with pytest.raises(urllib.error.HTTPError):
        control(sim, "/_sim/config", {"no_such_field": 1})

    control(sim, "/_sim/reset", {})
    assert control(sim, "/_sim/stats")["requests"] == 0


def test_config_from_env_and_validation() -> None:
    config = SimulatorConfig.from_env(
        {
            "LLM_SIM_RATE_429": "0.1",
            "LLM_SIM_RATE_529": "0.05",
            "LLM_SIM_RATE_500": "0.02",
            "LLM_SIM_RATE_TIMEOUT": "0.01",
            "LLM_SIM_RATE_MALFORMED": "0.03",
            "LLM_SIM_RATE_TRUNCATED": "0.04",
            "LLM_SIM_LATENCY": "0.2",
            "LLM_SIM_LATENCY_JITTER": "0.1",
            "LLM_SIM_RPM": "50",
            "LLM_SIM_RETRY_AFTER": "3",
            "LLM_SIM_SEED": "42",
        }
    )
    assert config == SimulatorConfig(
        rate_429=0.1,
        rate_529=0.05,
        rate_500=0.02,
        rate_timeout=0.01,
        rate_malformed=0.03,
        rate_truncated=0.04,
        latency_seconds=0.2,
        latency_jitter=0.1,
        rpm_limit=50,
        retry_after_seconds=3.0,
        seed=42,
    )
    assert SimulatorConfig.from_env({}) == SimulatorConfig()
    assert SimulatorConfig.from_env({"LLM_SIM_RPM": "0"}).rpm_limit is None
    with pytest.raises(ValueError, match="LLM_SIM_RATE_429"):
        SimulatorConfig.from_env({"LLM_SIM_RATE_429": "lots"})
    with pytest.raises(ValueError):
        SimulatorConfig(rate_429=0.7, rate_500=0.7)
    with pytest.raises(ValueError):
        SimulatorConfig(rpm_limit=0)


def test_stop_releases_a_hanging_request() -> None:
    sim = LLMSimulator(SimulatorConfig(rate_timeout=1.0, timeout_hang_seconds=30, seed=1))
    sim.start()
    client = anthropic.Anthropic(api_key="sim", base_url=sim.url, max_retries=0, timeout=0.3)
    with pytest.raises(anthropic.APITimeoutError):
        client.messages.create(**tool_params())
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 2
    with pytest.raises(RuntimeError):
        LLMSimulator().url  # noqa: B018 - not started
