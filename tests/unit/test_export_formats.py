"""Export format writers, splits and file names (pure; no AWS)."""

from __future__ import annotations

import csv
import io
import itertools
import json
import time
from collections import Counter
from datetime import UTC, date, datetime

import pytest

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.models import (
    Conversation,
    ConversationStatus,
    ConversationWithTurns,
    ExportFormat,
    QualityReport,
    Tier,
    Turn,
)
from chalicelib.export.filenames import export_filename
from chalicelib.export.formats import (
    CSV_COLUMNS,
    WRITERS,
    ExportOptions,
    ExportReport,
    InexpressibleConversationError,
    write_validated,
)
from chalicelib.export.splits import (
    assign_splits,
    group_conversations,
    select_split,
    split_manifest,
    validate_ratios,
)

SYSTEM = "You are a calm, practical financial coach."
EXPORT_DATE = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def make_conv(
    cid: str,
    roles: list[str],
    *,
    contents: list[str] | None = None,
    tier: Tier = Tier.TEMPLATE,
    persona: str = "saver",
    score: float | None = 8.5,
    cost: float | None = 0.02,
    chunk_id: str | None = None,
    template: tuple[str, int] | None = ("tpl_a", 1),
    model: str | None = "claude-sonnet",
    duplicate_of: str | None = None,
) -> ConversationWithTurns:
    quality = None
    if duplicate_of is not None:
        quality = QualityReport(score=score or 5.0, duplicate_of=duplicate_of)
    conv = Conversation(
        tenant_id="tenant_1",
        dataset_id="ds_1",
        conversation_id=cid,
        persona=persona,
        emotion="anxious",
        topic="retirement",
        intent="plan",
        tone="warm",
        tier=tier,
        status=ConversationStatus.APPROVED,
        quality_score=score,
        quality=quality,
        actual_cost_usd=cost,
        chunk_id=chunk_id,
        template_id=template[0] if template else None,
        template_version=template[1] if template else None,
        model=model,
        turn_count=len(roles),
    )
    texts = contents or [f"{cid} turn {i + 1} ({r})" for i, r in enumerate(roles)]
    turns = [
        Turn(turn_number=i + 1, role=r, content=t)
        for i, (r, t) in enumerate(zip(roles, texts, strict=True))
    ]
    return ConversationWithTurns(conversation=conv, turns=turns)


UA = ["user", "assistant"]


@pytest.fixture
def fixture_set() -> list[ConversationWithTurns]:
    return [
        make_conv(
            "conv_good1",
            UA * 2,
            contents=[
                "=SUM(A1:A9) is what my spreadsheet says",
                'Line one\nline two, with "quotes", commas\r\nand a CRLF',
                "@mention and +44 numbers",
                "-5% returns?\tHmm",
            ],
            tier=Tier.TEMPLATE,
            persona="saver",
            score=9.0,
            cost=0.03,
            template=("tpl_a", 2),
        ),
        make_conv(
            "conv_good2",
            UA * 3,
            contents=[
                "Ünïcödé ✓ and a line\u2028separator",
                "日本語の回答",
                "ok",
                "sure",
                "thanks",
                "you're welcome",
            ],
            tier=Tier.SCENARIO,
            persona="spender",
            score=6.0,
            cost=None,
            template=None,
            model="claude-haiku",
        ),
        # user, user, assistant: fine for openai, not for anthropic/sharegpt
        make_conv("conv_badalt", ["user", "user", "assistant"], tier=Tier.EDGE_CASE, score=None),
        make_conv("conv_empty", [], tier=Tier.TEMPLATE),
        make_conv("conv_good3", UA, tier=Tier.EDGE_CASE, persona="saver", score=8.0, cost=0.01),
    ]


def run(fmt: ExportFormat, source, **opts) -> tuple[bytes, ExportReport]:
    opts.setdefault("export_date", EXPORT_DATE)
    stream, report = write_validated(fmt, source, ExportOptions(**opts))
    data = b"".join(stream)
    assert report.complete
    return data, report


def jsonl(data: bytes) -> list[dict]:
    assert data.endswith(b"\n")
    lines = data.decode("utf-8").split("\n")[:-1]
    # str.splitlines agrees with "\n" splitting: U+2028 & co. are escaped
    assert len(data.decode("utf-8").splitlines()) == len(lines)
    return [json.loads(line) for line in lines]


def skipped_ids(report) -> dict[str, str]:
    return {s["conversation_id"]: s["reason"] for s in report.skipped_records()}


# --------------------------------------------------------------------------- jsonl formats


def test_openai_records(fixture_set):
    data, report = run(ExportFormat.OPENAI, fixture_set, system_prompt=SYSTEM)
    records = jsonl(data)
    assert report.written == len(records) == 4
    assert set(skipped_ids(report)) == {"conv_empty"}
    assert "no turns" in skipped_ids(report)["conv_empty"]
    writer = WRITERS[ExportFormat.OPENAI]
    for line, rec in zip(data.decode().split("\n"), records, strict=False):
        assert set(rec) == {"messages"}
        assert rec["messages"][0] == {"role": "system", "content": SYSTEM}
        assert all(set(m) == {"role", "content"} for m in rec["messages"])
        assert {m["role"] for m in rec["messages"][1:]} <= {"user", "assistant"}
        assert writer.validate_record(line) == []
    first = records[0]["messages"]
    assert first[2]["content"] == 'Line one\nline two, with "quotes", commas\r\nand a CRLF'
    assert records[1]["messages"][1]["content"] == "Ünïcödé ✓ and a line\u2028separator"
    assert [m["role"] for m in records[2]["messages"]] == ["system", "user", "user", "assistant"]


def test_openai_weights(fixture_set):
    good = [fixture_set[1]]
    recs = jsonl(run(ExportFormat.OPENAI, good, assistant_weights=True)[0])
    msgs = recs[0]["messages"]
    assert [m.get("weight") for m in msgs] == [None, 1, None, 1, None, 1]
    recs = jsonl(
        run(ExportFormat.OPENAI, good, assistant_weights=True, weight_last_assistant_only=True)[0]
    )
    assert [m.get("weight") for m in recs[0]["messages"]] == [None, 0, None, 0, None, 1]
    writer = WRITERS[ExportFormat.OPENAI]
    assert writer.validate_record(recs[0]) == []
    bad = {"messages": [{"role": "user", "content": "x", "weight": 1}]}
    assert any("only allowed on assistant" in r for r in writer.validate_record(bad))
    assert writer.validate_record({"messages": [], "extra": 1})
    assert writer.validate_record("{not json")


def test_anthropic_rejects_bad_alternation_and_writes_the_rest(fixture_set):
    data, report = run(ExportFormat.ANTHROPIC, fixture_set, system_prompt=SYSTEM)
    records = jsonl(data)
    skipped = skipped_ids(report)
    assert set(skipped) == {"conv_badalt", "conv_empty"}
    assert "turns 1 and 2 are both 'user'" in skipped["conv_badalt"]
    assert report.written == len(records) == 3
    writer = WRITERS[ExportFormat.ANTHROPIC]
    for rec in records:
        assert set(rec) == {"system", "messages"}
        assert rec["system"] == SYSTEM
        roles = [m["role"] for m in rec["messages"]]
        assert roles[0] == "user" and roles[-1] == "assistant"
        assert all(a != b for a, b in itertools.pairwise(roles))
        assert all(set(m) == {"role", "content"} for m in rec["messages"])
        assert writer.validate_record(rec) == []
    # No system prompt: the key is omitted rather than empty.
    no_sys = jsonl(run(ExportFormat.ANTHROPIC, fixture_set[:1], system_prompt="  ")[0])
    assert set(no_sys[0]) == {"messages"}


def test_anthropic_validation_reasons():
    writer = WRITERS[ExportFormat.ANTHROPIC]
    starts_assistant = make_conv("c", ["assistant", "user"])
    reasons = writer.validate_conversation(starts_assistant)
    assert any("first turn" in r for r in reasons)
    assert any("last turn" in r for r in reasons)
    blank = make_conv("c", UA, contents=["hi", "   "])
    assert writer.validate_conversation(blank) == ["turn 2 has empty content"]
    assert writer.validate_conversation(make_conv("c", [])) == ["conversation has no turns"]
    ok = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
    assert writer.validate_record(ok) == []
    assert writer.validate_record({**ok, "metadata": {}})
    assert writer.validate_record({"messages": ok["messages"][::-1]})
    assert writer.validate_record({"system": "", **ok})


def test_write_without_report_raises_instead_of_skipping(fixture_set):
    stream = WRITERS[ExportFormat.ANTHROPIC].write(fixture_set, ExportOptions())
    with pytest.raises(InexpressibleConversationError) as exc:
        b"".join(stream)
    assert exc.value.details["conversation_id"] == "conv_badalt"


def test_sharegpt_records(fixture_set):
    data, report = run(ExportFormat.SHAREGPT, fixture_set, system_prompt=SYSTEM)
    records = jsonl(data)
    assert set(skipped_ids(report)) == {"conv_badalt", "conv_empty"}
    writer = WRITERS[ExportFormat.SHAREGPT]
    for rec in records:
        assert set(rec) == {"conversations"}
        froms = [m["from"] for m in rec["conversations"]]
        assert froms[0] == "system" and rec["conversations"][0]["value"] == SYSTEM
        assert froms[1::2] == ["human"] * len(froms[1::2])
        assert froms[2::2] == ["gpt"] * len(froms[2::2])
        assert all(set(m) == {"from", "value"} for m in rec["conversations"])
        assert writer.validate_record(rec) == []


def test_turns_are_ordered_and_duplicates_rejected():
    cwt = make_conv("c", UA * 2)
    cwt.turns.reverse()
    rec = jsonl(run(ExportFormat.OPENAI, [cwt])[0])[0]
    assert [m["content"] for m in rec["messages"]] == [
        "c turn 1 (user)",
        "c turn 2 (assistant)",
        "c turn 3 (user)",
        "c turn 4 (assistant)",
    ]
    dup = make_conv("d", UA)
    dup.turns[1].turn_number = 1
    for writer in WRITERS.values():
        assert "duplicate turn_number 1" in writer.validate_conversation(dup)


def test_chunking_is_transparent(fixture_set):
    whole, _ = run(ExportFormat.OPENAI, fixture_set * 20, chunk_size=1 << 20)
    stream, report = write_validated(
        ExportFormat.OPENAI, fixture_set * 20, ExportOptions(chunk_size=256)
    )
    chunks = list(stream)
    assert len(chunks) > 5
    assert all(isinstance(c, bytes) for c in chunks)
    assert b"".join(chunks) == whole
    assert report.bytes_written == len(whole)


def test_hf_messages_loads_with_datasets(fixture_set, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import datasets

    splits = {"conv_good1": "train", "conv_good2": "test"}
    data, report = run(ExportFormat.HF_MESSAGES, fixture_set, system_prompt=SYSTEM, splits=splits)
    path = tmp_path / "hf.jsonl"
    path.write_bytes(data)
    writer = WRITERS[ExportFormat.HF_MESSAGES]
    assert all(writer.validate_record(line) == [] for line in data.decode().split("\n")[:-1])

    ds = datasets.load_dataset(
        "json", data_files=str(path), split="train", cache_dir=str(tmp_path / "cache")
    )
    assert ds.num_rows == report.written == 4
    for col in ("messages", "conversation_id", "persona", "emotion", "topic", "intent", "tone"):
        assert col in ds.column_names
    assert {"tier", "quality_score", "split", "template_version"} <= set(ds.column_names)
    assert ds.features["quality_score"].dtype == "float64"
    assert ds.features["persona"].dtype == "string"
    row = ds[0]
    assert row["conversation_id"] == "conv_good1"
    assert row["messages"][0] == {"role": "system", "content": SYSTEM}
    assert row["split"] == "train"
    assert ds[2]["quality_score"] is None and ds[2]["split"] is None


# --------------------------------------------------------------------------- generic


def test_generic_header_and_conversations(fixture_set):
    data, report = run(ExportFormat.GENERIC, lambda: iter(fixture_set), system_prompt=SYSTEM)
    doc = json.loads(data)
    assert set(doc) == {"metadata", "conversations"}
    meta = doc["metadata"]
    # written: good1 (9.0), good2 (6.0), badalt (None), good3 (8.0); empty skipped
    assert meta["conversation_count"] == report.written == 4
    assert meta["export_date"] == EXPORT_DATE.isoformat()
    assert meta["format"] == "generic"
    assert meta["quality"] == {
        "scored_count": 3,
        "mean": round((9.0 + 6.0 + 8.0) / 3, 4),
        "min": 6.0,
        "max": 9.0,
        "share_at_least_8": round(2 / 3, 4),
    }
    assert meta["total_cost_usd"] == pytest.approx(0.03 + 0.02 + 0.01)
    assert meta["tier_distribution"] == {"template": 1, "scenario": 1, "edge_case": 2}
    assert meta["persona_distribution"] == {"saver": 3, "spender": 1}
    assert meta["template_versions"] == [
        {"template_id": "tpl_a", "version": 1, "count": 2},
        {"template_id": "tpl_a", "version": 2, "count": 1},
    ]
    assert meta["models"] == {"claude-haiku": 1, "claude-sonnet": 3}
    convs = doc["conversations"]
    assert [c["conversation_id"] for c in convs] == [
        "conv_good1",
        "conv_good2",
        "conv_badalt",
        "conv_good3",
    ]
    assert "tenant_id" not in convs[0]
    assert convs[0]["persona"] == "saver" and convs[0]["tier"] == "template"
    assert convs[0]["turns"][1] == {
        "turn_number": 2,
        "role": "assistant",
        "content": 'Line one\nline two, with "quotes", commas\r\nand a CRLF',
    }
    writer = WRITERS[ExportFormat.GENERIC]
    assert all(writer.validate_record(c) == [] for c in convs)
    assert skipped_ids(report).keys() == {"conv_empty"}
    assert report.warnings == []


def test_generic_needs_a_reiterable_source(fixture_set):
    with pytest.raises(TypeError):
        WRITERS[ExportFormat.GENERIC].write(iter(fixture_set), ExportOptions())
    # A list is re-iterable and accepted as is.
    assert json.loads(run(ExportFormat.GENERIC, fixture_set)[0])["conversations"]


def test_generic_warns_when_source_changes_between_passes(fixture_set):
    calls = iter([fixture_set, fixture_set[:2]])
    data, report = run(ExportFormat.GENERIC, lambda: next(calls))
    doc = json.loads(data)
    assert doc["metadata"]["conversation_count"] == 4
    assert len(doc["conversations"]) == 2
    assert report.warnings


# --------------------------------------------------------------------------- csv


def test_csv_neutralises_formulas_and_round_trips(fixture_set):
    splits = {"conv_good1": "train"}
    data, report = run(
        ExportFormat.CSV, fixture_set, system_prompt="=cmd|' /C calc'!A0", splits=splits
    )
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))
    assert list(rows[0]) == [*CSV_COLUMNS, "split"]
    assert report.written == 4
    # system row + 4 + 6 + 3 + 2 turns
    assert len(rows) == 4 + 4 + 6 + 3 + 2
    good1 = [r for r in rows if r["conversation_id"] == "conv_good1"]
    assert [r["role"] for r in good1] == ["system", "user", "assistant", "user", "assistant"]
    assert good1[0]["turn_number"] == "0" and good1[0]["content"].startswith("'=cmd")
    assert good1[1]["content"] == "'=SUM(A1:A9) is what my spreadsheet says"
    # multi-line content survives (csv keeps the CRLF inside the quoted cell)
    assert good1[2]["content"] == 'Line one\nline two, with "quotes", commas\r\nand a CRLF'
    assert good1[3]["content"] == "'@mention and +44 numbers"
    assert good1[4]["content"] == "'-5% returns?\tHmm"
    assert good1[1]["split"] == "train" and rows[-1]["split"] == ""
    assert good1[1]["quality_score"] == "9.0" and good1[1]["tier"] == "template"
    writer = WRITERS[ExportFormat.CSV]
    for r in rows:
        assert writer.validate_record(r) == []
        assert not any(v and v[0] in "=+-@\t\r" for v in r.values())
    assert writer.validate_record(["x"] * 11 + ["user", "=1+1"])
    assert writer.validate_record("a,b,c\r\n")


# --------------------------------------------------------------------------- throughput guard


def test_openai_throughput_guard():
    # Generous bound (the target is >= 2,000/s); catches an accidental O(n^2) or re-parse.
    convs = [make_conv(f"c{i}", UA * 6, contents=["word " * 60] * 12) for i in range(50)] * 20
    start = time.perf_counter()
    _, report = run(ExportFormat.OPENAI, convs, system_prompt=SYSTEM)
    elapsed = time.perf_counter() - start
    assert report.written == 1000
    assert elapsed < 2.0, f"{1000 / elapsed:.0f} conversations/s"


# --------------------------------------------------------------------------- splits


def population(n: int = 120, chunk_every: int = 3) -> list[Conversation]:
    """n conversations over 3 tiers x 4 personas; every few share a chunk."""
    personas = ["saver", "spender", "retiree", "student"]
    out = []
    for i in range(n):
        out.append(
            make_conv(
                f"conv_{i:03d}",
                UA,
                tier=list(Tier)[i % 3],
                persona=personas[(i // 3) % 4],
                chunk_id=f"chunk_{i // chunk_every}" if i % 2 == 0 else None,
            ).conversation
        )
    return out


@pytest.mark.parametrize(
    "ratios",
    [
        {"train": 0.8, "validation": 0.1},  # sums to 0.9
        {"train": 1.1, "test": -0.1},
        {"train": 0.8, "dev": 0.2},
        {"train": float("nan"), "test": 1.0},
        {},
    ],
)
def test_ratio_validation_rejects(ratios):
    with pytest.raises(ValidationError):
        validate_ratios(ratios)


def test_ratio_validation_accepts_within_tolerance():
    assert validate_ratios({"test": 0.1, "train": 0.9 + 5e-7}) == {
        "train": pytest.approx(0.9),
        "test": 0.1,
    }


def test_splits_deterministic_and_seeded():
    convs = population()
    a = assign_splits(convs, {"train": 0.8, "validation": 0.1, "test": 0.1}, seed=42)
    b = assign_splits(list(reversed(convs)), {"train": 0.8, "validation": 0.1, "test": 0.1}, 42)
    assert a == b
    c = assign_splits(convs, {"train": 0.8, "validation": 0.1, "test": 0.1}, seed=43)
    assert a != c
    assert set(a) == {x.conversation_id for x in convs}


@pytest.mark.parametrize("n", [90, 120, 301])
def test_split_ratios_no_leakage_and_stratification(n):
    ratios = {"train": 0.8, "validation": 0.1, "test": 0.1}
    convs = population(n)
    assignments = assign_splits(convs, ratios, seed=7)
    manifest = split_manifest(assignments, convs, ratios)
    counts = manifest["counts"]
    for name, share in ratios.items():
        assert abs(counts[name] - share * n) <= max(2, 0.02 * n), counts
    assert manifest["leakage"] == {"ok": True, "groups_across_splits": []}
    # every conversation sharing a chunk is on one side
    by_chunk: dict[str, set[str]] = {}
    for c in convs:
        if c.chunk_id:
            by_chunk.setdefault(c.chunk_id, set()).add(assignments[c.conversation_id])
    assert all(len(s) == 1 for s in by_chunk.values())
    # stratified: each tier is split close to the overall ratios
    for tier in Tier:
        in_tier = sum(manifest["by_tier"][s].get(tier.value, 0) for s in counts)
        for name, share in ratios.items():
            got = manifest["by_tier"][name].get(tier.value, 0)
            assert abs(got - share * in_tier) <= 3, (tier, name, manifest["by_tier"])
    assert manifest["total"] == n and manifest["unassigned"] == []
    assert sum(manifest["groups"]["per_split"].values()) == manifest["groups"]["total"]


def test_duplicates_are_grouped_and_zero_ratio_split_unused():
    convs = population(40)
    convs[5] = make_conv("conv_005", UA, duplicate_of="conv_030").conversation
    groups = group_conversations(convs)
    assert groups["conv_005"] == groups["conv_030"]
    assignments = assign_splits(convs, {"train": 0.5, "validation": 0.0, "test": 0.5}, seed=1)
    assert assignments["conv_005"] == assignments["conv_030"]
    assert "validation" not in set(assignments.values())
    assert Counter(assignments.values())["train"] == pytest.approx(20, abs=2)


def test_manifest_detects_leakage_and_select_split():
    convs = population(30)
    assignments = assign_splits(convs, None, seed=3)
    a, b = [c for c in convs if c.chunk_id == "chunk_0"][:2]
    tampered = {**assignments, a.conversation_id: "train", b.conversation_id: "test"}
    leak = split_manifest(tampered, convs)["leakage"]
    assert not leak["ok"]
    assert leak["groups_across_splits"] == [{"group": "chunk:chunk_0", "splits": ["test", "train"]}]
    source = [make_conv(c.conversation_id, UA) for c in convs]
    train = list(select_split(source, assignments, "train"))
    assert len(train) == Counter(assignments.values())["train"]


def test_assign_splits_rejects_duplicate_ids():
    convs = population(4)
    with pytest.raises(ValidationError):
        assign_splits([*convs, convs[0]], None, seed=0)


# --------------------------------------------------------------------------- filenames


def test_export_filename():
    assert (
        export_filename(date(2026, 11, 26), count=87, extension="jsonl")
        == "training-data-2026-11-26-approved-87-conversations.jsonl"
    )
    assert (
        export_filename(
            datetime(2026, 11, 26, 23, 30, tzinfo=UTC),
            "Approved",
            count=70,
            extension=".jsonl",
            split="train",
        )
        == "training-data-2026-11-26-approved-70-conversations-train.jsonl"
    )
    assert (
        export_filename(date(2026, 1, 2), "all statuses", count=3, extension="csv")
        == "training-data-2026-01-02-all-statuses-3-conversations.csv"
    )
    with pytest.raises(ValidationError):
        export_filename(date(2026, 1, 2), count=-1, extension="csv")
    with pytest.raises(ValidationError):
        export_filename(date(2026, 1, 2), count=1, extension="../x")


def test_csv_record_check_covers_every_row_s_cells() -> None:
    """The record check skips metadata cells a row shares with the conversation's first
    row (already checked); a row whose metadata differs is checked in full."""
    from chalicelib.export.formats import CSV_COLUMNS, CSVWriter

    head = ["conv_1", "ds_1", "Persona", "Fear", "Fees", "Ask", "Warm", "template", 9.0, "approved"]
    assert len(head) == CSV_COLUMNS.index("turn_number")
    rows = [[*head, 1, "user", "hi"], [*head, 2, "assistant", "=1+1"]]
    assert CSVWriter()._check(rows) == ["cell 12 starts with '=' (formula injection)"]
    tampered = [*head[:2], "@SUM(A1)", *head[3:]]
    rows = [[*head, 1, "user", "hi"], [*tampered, 2, "assistant", "fine"]]
    assert CSVWriter()._check(rows) == ["cell 2 starts with '@' (formula injection)"]
    assert CSVWriter()._check([[*tampered, 1, "user", "hi"]]) == [
        "cell 2 starts with '@' (formula injection)"
    ]


def test_split_members_split_exactly_as_their_conversations():
    """An export keeps only a SplitMember per conversation for its split pass: the
    assignment, the groups and the manifest must not change."""
    from chalicelib.export.splits import split_member

    convs = population(120)
    convs[7] = make_conv("conv_007", UA, duplicate_of="conv_100").conversation
    members = [split_member(c) for c in convs]
    ratios = {"train": 0.8, "validation": 0.1, "test": 0.1}
    assert assign_splits(members, ratios, seed=3) == assign_splits(convs, ratios, seed=3)
    assert group_conversations(members) == group_conversations(convs)
    assignments = assign_splits(convs, ratios, seed=3)
    assert split_manifest(assignments, members, ratios) == split_manifest(
        assignments, convs, ratios
    )
    assert members[7].duplicate_of == "conv_100" and members[7].tier == convs[7].tier.value


def test_csv_rows_are_written_exactly_as_csv_writer_writes_them():
    """CSVWriter encodes a conversation's shared cells once; the file must still be
    byte-for-byte what csv.writer writes for the same rows."""

    import random

    from chalicelib.export.formats import csv_cell

    rng = random.Random(11)
    alphabet = ['"', ",", "\n", "\r", " ", "'", "=", "a", "é", "\u2028", "\t", ";"]
    cells: list[object] = ["", "plain", 0, 7, -1, 9.7, 10.0, 1e-7, None, True]
    cells += ["".join(rng.choices(alphabet, k=rng.randrange(1, 8))) for _ in range(400)]
    for _ in range(300):
        row = rng.sample(cells, 5)
        out = io.StringIO()
        csv.writer(out).writerow(row)
        assert ",".join(csv_cell("" if c is None else c) for c in row) + "\r\n" == out.getvalue()

    w = WRITERS[ExportFormat.CSV]
    tricky = make_conv(
        "conv_q",
        UA,
        contents=['He said "hi", then\nleft', "=SUM(1,2)\r\nok"],
        chunk_id="chunk,1",
    )
    for splits in (None, {"conv_q": "train"}):
        opts = ExportOptions(system_prompt='Be "kind", always', splits=splits)
        rows, text = w._render(tricky, tricky.turns, opts)
        expected = io.StringIO()
        csv.writer(expected).writerows(rows)
        assert text == expected.getvalue()
