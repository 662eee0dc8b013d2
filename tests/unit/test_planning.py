"""Planning: imports, covering-design planner, coverage analysis, seed templates."""

from __future__ import annotations

import json
import re
import string
from collections import Counter

import pytest

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.models import (
    Chunk,
    Conversation,
    ConversationStatus,
    Taxonomy,
    Tier,
    TierDistribution,
)
from chalicelib.planning.coverage import analyze_coverage, plan_gap_fill
from chalicelib.planning.imports import (
    MAX_CHUNK_TEXT_CHARS,
    MAX_CHUNKS,
    MAX_ENTRIES_PER_DIMENSION,
    parse_chunks_csv,
    parse_chunks_json,
    parse_chunks_payload,
    parse_taxonomy,
)
from chalicelib.planning.planner import (
    ARCS,
    EDGE_CASE_TYPES,
    pair_coverage,
    plan_conversations,
    scenario_from_text,
)
from chalicelib.planning.sample_data import SAMPLE_DATASET_PATH, load_sample_dataset
from chalicelib.planning.seed_templates import (
    ALLOWED_PLACEHOLDERS,
    DEFAULT_SYSTEM_PROMPT,
    SEED_TEMPLATES,
    TIER_PARAMETER_LINES,
    seed_prompt_templates,
    template_placeholders,
)


@pytest.fixture(scope="module")
def sample() -> tuple[Taxonomy, list[Chunk], dict]:
    return load_sample_dataset()


@pytest.fixture
def small_taxonomy() -> Taxonomy:
    return parse_taxonomy(
        {
            "personas": [{"name": "Pre-Retiree", "description": "55-65"}, "Young Professional"],
            "emotions": ["Anxious", "Hopeful"],
            "topics": ["Fees", "Retirement"],
            "intents": ["Learn"],
            "tones": ["Warm"],
        }
    )


def _errors(exc: pytest.ExceptionInfo[ValidationError]) -> list[dict]:
    return exc.value.details["errors"]


# --------------------------------------------------------------------------- imports


def test_parse_taxonomy_accepts_objects_and_strings(small_taxonomy: Taxonomy) -> None:
    assert small_taxonomy.names("personas") == ["Pre-Retiree", "Young Professional"]
    assert small_taxonomy.describe("personas", "Pre-Retiree") == "55-65"
    assert small_taxonomy.describe("personas", "Young Professional") == ""


def test_parse_taxonomy_reports_every_bad_entry() -> None:
    data = {
        "personas": ["A", "a", {"description": "no name"}, 42],
        "emotions": [],
        "topics": ["T"] * 1 + [{"name": "x" * 121}],
        "intents": ["I"],
        # tones missing
    }
    with pytest.raises(ValidationError) as exc:
        parse_taxonomy(data)
    got = {(e.get("dimension"), e["row"], e["field"]) for e in _errors(exc)}
    assert got == {
        ("personas", 2, "name"),  # duplicate (case-insensitive)
        ("personas", 3, "name"),  # missing name
        ("personas", 4, None),  # not a string or object
        ("emotions", None, "emotions"),  # empty
        ("topics", 2, "name"),  # too long
        ("tones", None, "tones"),  # missing
    }


def test_parse_taxonomy_limits_entries_per_dimension() -> None:
    data = {d: ["x"] for d in ("personas", "emotions", "topics", "intents", "tones")}
    data["topics"] = [f"t{i}" for i in range(MAX_ENTRIES_PER_DIMENSION + 1)]
    with pytest.raises(ValidationError) as exc:
        parse_taxonomy(data)
    assert _errors(exc)[0]["field"] == "topics"


def test_parse_chunks_json_good(small_taxonomy: Taxonomy) -> None:
    chunks = parse_chunks_json(
        [
            {
                "chunk_id": "c1",
                "document_id": "d1",
                "text": " Fees are 1%. ",
                "persona": "pre-retiree",
            },
            {
                "chunk_id": 2,
                "document_id": "d1",
                "document_title": "Guide",
                "text": "Retire at 67.",
            },
        ],
        small_taxonomy,
    )
    assert [c.chunk_id for c in chunks] == ["c1", "2"]
    assert chunks[0].persona == "Pre-Retiree"  # canonical taxonomy spelling
    assert chunks[0].text == "Fees are 1%."
    assert chunks[1].emotion is None and chunks[1].document_title == "Guide"


def test_parse_chunks_json_reports_every_bad_row_and_imports_nothing(
    small_taxonomy: Taxonomy,
) -> None:
    rows = [
        {"chunk_id": "ok", "document_id": "d", "text": "fine"},
        {"document_id": "d", "text": "no id"},
        {"chunk_id": "e", "document_id": "d", "text": "   "},
        {"chunk_id": "ok", "document_id": "d", "text": "dup"},
        {"chunk_id": "u", "document_id": "d", "text": "t", "emotion": "Furious"},
        {"chunk_id": "long", "document_id": "d", "text": "x" * (MAX_CHUNK_TEXT_CHARS + 1)},
        "not an object",
        {"chunk_id": "fine2", "document_id": "d", "text": "also fine"},
    ]
    with pytest.raises(ValidationError) as exc:
        parse_chunks_json(rows, small_taxonomy)
    got = [(e["row"], e["field"]) for e in _errors(exc)]
    assert got == [
        (2, "chunk_id"),
        (3, "text"),
        (4, "chunk_id"),
        (5, "emotion"),
        (6, "text"),
        (7, None),
    ]
    assert "duplicate" in _errors(exc)[2]["error"]
    assert "1-based" in exc.value.details["row_numbering"]


def test_unknown_dimension_values_are_fine_without_a_taxonomy() -> None:
    chunks = parse_chunks_json([{"chunk_id": "a", "document_id": "d", "text": "t", "tone": "Odd"}])
    assert chunks[0].tone == "Odd"


def test_parse_chunks_csv_good(small_taxonomy: Taxonomy) -> None:
    text = (
        "\ufeffchunk_id,document_id,document_title,text,persona,emotion,topic,intent,tone\r\n"
        'c1,d1,Fee Schedule,"Fees are 1%, billed quarterly.",'
        "Pre-Retiree,Anxious,Fees,Learn,Warm\r\n"
        "\r\n"
        'c2,d1,Fee Schedule,"Multi\nline text",,,,,\r\n'
    )
    chunks = parse_chunks_csv(text, small_taxonomy)
    assert [c.chunk_id for c in chunks] == ["c1", "c2"]
    assert chunks[0].topic == "Fees" and chunks[1].persona is None
    assert chunks[1].text == "Multi\nline text"


def test_parse_chunks_csv_dimension_columns_optional() -> None:
    chunks = parse_chunks_csv("chunk_id,document_id,text\na,d,hello\n")
    assert chunks[0].text == "hello" and chunks[0].document_title == ""


def test_parse_chunks_csv_reports_rows_with_header_as_row_1(small_taxonomy: Taxonomy) -> None:
    text = (
        "chunk_id,document_id,document_title,text,persona\n"
        "a,d,T,good,Pre-Retiree\n"  # row 2
        ",d,T,missing id,\n"  # row 3
        "b,d,T,,\n"  # row 4: empty text
        "a,d,T,duplicate,\n"  # row 5
        "c,d,T,bad persona,Astronaut\n"  # row 6
    )
    with pytest.raises(ValidationError) as exc:
        parse_chunks_csv(text, small_taxonomy)
    got = [(e["row"], e["field"]) for e in _errors(exc)]
    assert got == [(3, "chunk_id"), (4, "text"), (5, "chunk_id"), (6, "persona")]
    assert "header is row 1" in exc.value.details["row_numbering"]


def test_parse_chunks_csv_missing_required_column() -> None:
    with pytest.raises(ValidationError) as exc:
        parse_chunks_csv("chunk_id,title\na,b\n")
    assert {(e["row"], e["field"]) for e in _errors(exc)} == {(1, "document_id"), (1, "text")}


def test_chunk_count_limit() -> None:
    rows = [{"chunk_id": str(i), "document_id": "d", "text": "t"} for i in range(MAX_CHUNKS + 1)]
    with pytest.raises(ValidationError) as exc:
        parse_chunks_json(rows)
    assert exc.value.details["limit"] == MAX_CHUNKS


def test_parse_chunks_payload_detects_format() -> None:
    as_json = json.dumps([{"chunk_id": "a", "document_id": "d", "text": "t"}])
    assert parse_chunks_payload(as_json)[0].chunk_id == "a"
    assert parse_chunks_payload("chunk_id,document_id,text\nb,d,t\n")[0].chunk_id == "b"
    with pytest.raises(ValidationError):
        parse_chunks_payload("[{bad json")


# --------------------------------------------------------------------------- sample data


def test_sample_dataset_is_realistic(sample: tuple[Taxonomy, list[Chunk], dict]) -> None:
    taxonomy, chunks, info = sample
    assert SAMPLE_DATASET_PATH.is_file()
    assert 5 <= len(taxonomy.personas) <= 6 and 5 <= len(taxonomy.emotions) <= 6
    assert 6 <= len(taxonomy.topics) <= 8 and 4 <= len(taxonomy.intents) <= 5
    assert 3 <= len(taxonomy.tones) <= 4
    assert all(
        e.description
        for d in ("personas", "emotions", "topics", "intents", "tones")
        for e in getattr(taxonomy, d)
    )
    assert 15 <= len(chunks) <= 20
    assert all(c.text.count(". ") >= 2 and c.persona and c.emotion and c.topic for c in chunks)
    assert {"name", "description", "suggested_budget_usd", "business_name"} <= info.keys()


# --------------------------------------------------------------------------- planner


@pytest.mark.parametrize(
    ("count", "distribution", "expected"),
    [
        (90, TierDistribution(), {Tier.TEMPLATE: 40, Tier.SCENARIO: 35, Tier.EDGE_CASE: 15}),
        (
            100,
            TierDistribution(template=50, scenario=30, edge_case=20),
            {Tier.TEMPLATE: 50, Tier.SCENARIO: 30, Tier.EDGE_CASE: 20},
        ),
    ],
)
def test_tier_counts(sample, count, distribution, expected) -> None:
    taxonomy, chunks, _ = sample
    specs = plan_conversations(taxonomy, chunks, count, distribution, seed=7)
    assert Counter(s.tier for s in specs) == expected
    assert [s.tier for s in specs] == sorted((s.tier for s in specs), key=list(Tier).index)


def test_deterministic_per_seed_and_seed_matters(sample) -> None:
    taxonomy, chunks, _ = sample
    a = plan_conversations(taxonomy, chunks, 90, TierDistribution(), seed=7)
    b = plan_conversations(taxonomy, chunks, 90, TierDistribution(), seed=7)
    c = plan_conversations(taxonomy, chunks, 90, TierDistribution(), seed=8)
    assert a == b
    assert a != c


def test_all_allowed_pairs_covered_at_90(sample) -> None:
    taxonomy, chunks, _ = sample
    specs = plan_conversations(taxonomy, chunks, 90, TierDistribution(), seed=7)
    cov = pair_coverage(specs, taxonomy)
    for kind in ("persona_emotion", "persona_topic"):
        assert cov[kind]["allowed"] == cov[kind]["possible"]
        assert cov[kind]["achieved"] == cov[kind]["allowed"], cov[kind]["missing"]
        assert cov[kind]["percent"] == 100.0
    assert max(Counter(s.persona for s in specs).values()) == 18  # personas round-robin


def test_small_plan_covers_as_many_pairs_as_it_has_conversations(sample) -> None:
    taxonomy, chunks, _ = sample
    specs = plan_conversations(taxonomy, chunks, 30, TierDistribution(), seed=7)
    cov = pair_coverage(specs, taxonomy)
    assert cov["persona_topic"]["allowed"] == 30 and cov["persona_topic"]["achieved"] == 30
    assert cov["persona_emotion"]["achieved"] == 25


def test_unconstrained_plan_never_repeats_a_pair_before_all_are_used(sample) -> None:
    taxonomy, chunks, _ = sample
    free = [c.model_copy(update={d: None for d in ("persona", "emotion", "topic")}) for c in chunks]
    for count in (25, 60, 90):
        specs = plan_conversations(taxonomy, free, count, TierDistribution(), seed=3)
        for dim in ("emotion", "topic"):
            pairs = Counter((s.persona, getattr(s, dim)) for s in specs)
            cells = [
                pairs[(p, v)] for p in taxonomy.names("personas") for v in taxonomy.names(f"{dim}s")
            ]
            assert max(cells) - min(cells) <= 1, (count, dim)
        for dim in ("intent", "tone"):
            values = Counter(getattr(s, dim) for s in specs).values()
            assert max(values) - min(values) <= 1


def test_arcs_balanced_and_edge_cases_cycled(sample) -> None:
    taxonomy, chunks, _ = sample
    specs = plan_conversations(taxonomy, chunks, 90, TierDistribution(), seed=7)
    template = [s for s in specs if s.tier is Tier.TEMPLATE]
    assert Counter(s.arc for s in template) == {arc: 8 for arc in ARCS}
    edge = [s for s in specs if s.tier is Tier.EDGE_CASE]
    assert [s.edge_case_type for s in edge[:5]] == list(EDGE_CASE_TYPES)
    assert Counter(s.edge_case_type for s in edge) == {t: 3 for t in EDGE_CASE_TYPES}
    assert all(s.arc is None and s.scenario is None for s in edge)


def test_scenario_specs_name_their_chunk_and_use_its_dimensions(sample) -> None:
    taxonomy, chunks, _ = sample
    by_id = {c.chunk_id: c for c in chunks}
    specs = plan_conversations(taxonomy, chunks, 90, TierDistribution(), seed=7)
    scenario = [s for s in specs if s.tier is Tier.SCENARIO]
    for s in scenario:
        chunk = by_id[s.chunk_id]
        assert s.document_id == chunk.document_id
        assert (s.persona, s.emotion, s.topic) == (chunk.persona, chunk.emotion, chunk.topic)
        assert s.scenario and "\n" not in s.scenario
        assert chunk.text.startswith(s.scenario.removesuffix("…"))
    uses = Counter(s.chunk_id for s in scenario)
    assert len(uses) == len(chunks) and max(uses.values()) - min(uses.values()) <= 1


def test_scenario_from_text_is_first_sentence_trimmed() -> None:
    assert (
        scenario_from_text("Fees are 1.00% a year.  We bill quarterly.") == "Fees are 1.00% a year."
    )
    long = scenario_from_text("word " * 100)
    assert len(long) <= 200 and long.endswith("…")


def test_plan_without_chunks_still_has_scenarios(small_taxonomy: Taxonomy) -> None:
    specs = plan_conversations(small_taxonomy, [], 10, TierDistribution(), seed=1)
    assert all(s.scenario for s in specs if s.tier is Tier.SCENARIO)


def test_plan_rejects_bad_count_and_empty_taxonomy(small_taxonomy: Taxonomy) -> None:
    with pytest.raises(ValidationError):
        plan_conversations(small_taxonomy, [], -1, TierDistribution(), seed=1)
    with pytest.raises(ValidationError):
        plan_conversations(Taxonomy(), [], 10, TierDistribution(), seed=1)
    assert plan_conversations(small_taxonomy, [], 0, TierDistribution(), seed=1) == []


# --------------------------------------------------------------------------- coverage


def _conversations(specs) -> list[Conversation]:
    return [Conversation.from_spec("tenant", "ds", s) for s in specs]


def test_coverage_shape_and_complete_plan(sample) -> None:
    taxonomy, chunks, _ = sample
    convs = _conversations(plan_conversations(taxonomy, chunks, 90, TierDistribution(), seed=7))
    report = analyze_coverage(taxonomy, convs, 90, TierDistribution())
    assert report["complete"] and report["gap_count"] == 0
    assert report["counted_statuses"] == ["not_generated", "generating", "generated", "approved"]
    assert report["excluded_statuses"] == ["rejected", "failed"]
    matrix = report["pairs"]["persona_emotion"]
    assert len(matrix["cells"]) == len(matrix["rows"]) == 5
    assert all(len(row) == len(matrix["cols"]) for row in matrix["cells"])
    assert sum(map(sum, matrix["cells"])) == 90
    assert [t["target"] for t in report["tiers"]] == [40, 35, 15]
    assert sum(d["effective"] for d in report["dimensions"]["persona"]) == 90


def test_rejections_open_gaps_and_gap_fill_closes_them(sample) -> None:
    taxonomy, chunks, _ = sample
    convs = _conversations(plan_conversations(taxonomy, chunks, 90, TierDistribution(), seed=7))
    persona, emotion, topic = convs[0].persona, convs[0].emotion, convs[-1].topic
    for c in convs:
        if (c.persona, c.emotion) == (persona, emotion) or (c.persona, c.topic) == (persona, topic):
            c.status = ConversationStatus.REJECTED
    convs[40].status = ConversationStatus.FAILED  # failed counts as a gap too
    rejected = sum(
        c.status in (ConversationStatus.REJECTED, ConversationStatus.FAILED) for c in convs
    )
    assert rejected >= 5

    report = analyze_coverage(taxonomy, convs, 90, TierDistribution())
    missing = {
        (g["kind"], g["persona"], g.get("emotion") or g.get("topic"))
        for g in report["gaps"]["pairs"]
    }
    assert ("persona_emotion", persona, emotion) in missing
    assert ("persona_topic", persona, topic) in missing
    assert all(g["status"] == "missing" for g in report["gaps"]["pairs"])
    shortfall = sum(t["shortfall"] for t in report["gaps"]["tiers"])
    assert shortfall == report["target_count"] - report["effective_total"] == rejected

    fill = plan_gap_fill(taxonomy, chunks, convs, 90, TierDistribution(), seed=7)
    assert fill == plan_gap_fill(taxonomy, chunks, convs, 90, TierDistribution(), seed=7)
    assert len(fill) == shortfall  # exactly the shortfall; it also covers the missing pairs
    assert Counter(s.tier.value for s in fill) == {
        t["tier"]: t["shortfall"] for t in report["gaps"]["tiers"]
    }
    # Missing pairs first.
    assert (fill[0].persona, fill[0].emotion) == (persona, emotion) or (
        fill[0].persona,
        fill[0].topic,
    ) == (persona, topic)

    after = analyze_coverage(taxonomy, convs + _conversations(fill), 90, TierDistribution())
    assert after["gaps"]["pairs"] == [] and after["gaps"]["tiers"] == []
    assert after["effective_total"] == 90
    assert plan_gap_fill(taxonomy, chunks, convs + _conversations(fill), 90, seed=7) == []


def test_gap_fill_adds_slots_when_pairs_are_missing_but_tiers_are_full(sample) -> None:
    taxonomy, chunks, _ = sample
    specs = plan_conversations(taxonomy, chunks, 90, TierDistribution(), seed=7)
    # A hand-made lopsided dataset: tier targets met, but only one persona ever used.
    lopsided = [s.model_copy(update={"persona": "Pre-Retiree"}) for s in specs]
    convs = _conversations(lopsided)
    fill = plan_gap_fill(taxonomy, chunks, convs, 90, TierDistribution(), seed=7)
    assert fill and all(s.tier is Tier.TEMPLATE for s in fill)
    after = analyze_coverage(taxonomy, convs + _conversations(fill), 90, TierDistribution())
    assert after["gaps"]["pairs"] == []


# --------------------------------------------------------------------------- templates


def test_seed_templates_shape() -> None:
    tiers = Counter(t.tier for t in SEED_TEMPLATES)
    # Scenario: one grounded in a document excerpt, one for datasets without chunks.
    assert tiers == {Tier.TEMPLATE: 2, Tier.SCENARIO: 2, Tier.EDGE_CASE: 1}
    assert len({t.name for t in SEED_TEMPLATES}) == len(SEED_TEMPLATES)
    assert all(t.weight > 0 and t.description for t in SEED_TEMPLATES)


@pytest.mark.parametrize("template", SEED_TEMPLATES, ids=lambda t: t.name)
def test_template_placeholders_and_parameter_lines(template) -> None:
    names = template_placeholders(template.text)
    assert set(names) <= ALLOWED_PLACEHOLDERS
    # Every field is a bare name: no attribute access, indexing, conversions or specs.
    for _, field, spec, conversion in string.Formatter().parse(template.text):
        if field is not None:
            assert re.fullmatch(r"[a-z_]+", field) and not spec and conversion is None
    lines = template.text.splitlines()
    assert set(TIER_PARAMETER_LINES[template.tier]) - set(template.parameter_lines) <= {
        "Source excerpt: {chunk}"
    }
    for line in template.parameter_lines:
        assert line in lines, line
    values = {name: f"<{name}>" for name in ALLOWED_PLACEHOLDERS}
    rendered = template.text.format(**values)
    assert "record_conversation" in rendered and '{"title"' in rendered
    assert "<turn_target>" in rendered and "<business_name>" in rendered


def test_tier_specific_instructions() -> None:
    by_name = {t.name: t.text for t in SEED_TEMPLATES}
    by_tier = {t.tier: t.text for t in SEED_TEMPLATES if t.tier is not Tier.SCENARIO}
    assert all(arc in t.text for t in SEED_TEMPLATES if t.tier is Tier.TEMPLATE for arc in ARCS)
    assert all(kind in by_tier[Tier.EDGE_CASE] for kind in EDGE_CASE_TYPES)
    grounded = by_name["Scenario from source excerpt"]
    assert "{chunk}" in grounded and "{document_title}" in grounded
    # The excerpt-free scenario template needs nothing a dataset without chunks lacks.
    bare = by_name["Scenario from the business description"]
    assert not set(template_placeholders(bare)) & {"chunk", "document_title"}
    assert "{scenario}" in bare and "{persona_description}" in bare


def test_seed_prompt_templates_and_system_prompt() -> None:
    templates = seed_prompt_templates("tenant-1")
    assert [t.name for t in templates] == [t.name for t in SEED_TEMPLATES]
    assert all(t.tenant_id == "tenant-1" and t.parameters for t in templates)
    assert "Harbor & Pine" in DEFAULT_SYSTEM_PROMPT and "{" not in DEFAULT_SYSTEM_PROMPT
