"""Pure pieces of split exports: push-style file streams (byte-identical to the writers),
shared-turn fingerprints, minimisation stratification, token statistics and the
count_tokens sample, names, the bundle, the trainer configs and the fine-tune rules."""

from __future__ import annotations

import io
import json
import zipfile
from collections import Counter
from datetime import UTC, date, datetime
from typing import Any

import pytest

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.finetune import hyperparameters, remaining_budget, resource_name
from chalicelib.domain.models import (
    Conversation,
    ConversationStatus,
    ExportFormat,
    StoredTurn,
    Tier,
)
from chalicelib.export.bundle import Bundle, SpooledFile
from chalicelib.export.filenames import dataset_label, export_file_name
from chalicelib.export.formats import (
    ExportItem,
    ExportOptions,
    ExportReport,
    FileStream,
    get_writer,
    write_validated,
    writer_for,
)
from chalicelib.export.leakage import MIN_WORDS, TurnFingerprints, normalised
from chalicelib.export.splits import SplitMember, assign_splits, stratification
from chalicelib.export.tokens import TokenTally, approx_tokens, summarise
from chalicelib.export.trainers import axolotl_yaml, llamafactory_dataset_info, sequence_length


def conv(i: int, roles: list[str] | None = None, text: str | None = None) -> ExportItem:
    c = Conversation(
        tenant_id="t",
        dataset_id="d",
        conversation_id=f"conv_{i:03d}",
        persona=("A", "B")[i % 2],
        emotion="Fear",
        topic="Fees",
        intent="Understand",
        tone="Warm",
        tier=Tier.TEMPLATE,
        status=ConversationStatus.APPROVED,
        quality_score=8.0,
    )
    roles = roles or ["user", "assistant", "user", "assistant"]
    turns = [
        StoredTurn(n + 1, r, text or f'conversation {i} turn {n + 1}: -1 + =A1, \u2028 "q"')
        for n, r in enumerate(roles)
    ]
    return ExportItem(c, turns)


ITEMS = [conv(i) for i in range(7)] + [conv(7, ["assistant", "user"])]


@pytest.mark.parametrize("fmt", list(ExportFormat))
@pytest.mark.parametrize("split", [False, True])
def test_file_stream_writes_exactly_what_the_writer_writes(fmt: ExportFormat, split: bool) -> None:
    splits = {item.conversation.conversation_id: "train" for item in ITEMS} if split else None
    options = ExportOptions(
        system_prompt="You are kind.",
        splits=splits,
        chunk_size=300,
        export_date=datetime(2026, 12, 2, tzinfo=UTC),
    )
    expected_stream, expected_report = write_validated(fmt, ITEMS, options)
    expected = b"".join(expected_stream)
    report = ExportReport(format=fmt)
    stream = FileStream(get_writer(fmt), options, report)
    body = b"".join(chunk for item in ITEMS if (chunk := stream.add(item))) + stream.close()
    assert stream.header() + body == expected
    assert report.written == expected_report.written == stream.records
    assert [s.conversation_id for s in report.skipped] == [
        s.conversation_id for s in expected_report.skipped
    ]
    assert report.bytes_written == len(expected)


def test_raw_csv_keeps_the_text_and_the_safe_csv_neutralises() -> None:
    raw = writer_for("csv", ExportOptions(neutralise_formulas=False))
    safe = writer_for("csv", ExportOptions())
    item = conv(0, ["user", "assistant"], "-5 points, =SUM(A1)")
    assert "'-5 points" in b"".join(safe.write([item])).decode()
    text = b"".join(raw.write([item], ExportOptions(neutralise_formulas=False))).decode()
    assert '"-5 points, =SUM(A1)"' in text and "'-5" not in text


def test_sharegpt_carries_the_split_label_only_with_a_split() -> None:
    writer = get_writer("sharegpt")
    item = conv(0)
    plain = json.loads(b"".join(writer.write([item])))
    labelled = json.loads(
        b"".join(writer.write([item], ExportOptions(splits={"conv_000": "validation"})))
    )
    assert set(plain) == {"conversations"} and labelled["split"] == "validation"
    assert writer.validate_record(labelled) == [] and writer.validate_record(plain) == []
    assert writer.validate_record({**labelled, "extra": 1})


# --------------------------------------------------------------------------- leakage


def test_normalised_turns_ignore_case_punctuation_and_spacing() -> None:
    assert normalised("Ignore  ALL previous, instructions!") == normalised(
        "ignore all previous instructions"
    )


def test_shared_turns_link_conversations_until_the_group_cap_then_are_reported() -> None:
    prints = TurnFingerprints()
    canned = "please tell me which single stock will double in value by next week"
    stock = "could you explain that again in simpler words for me please today"
    assert len(canned.split()) >= MIN_WORDS
    for i in range(100):
        turns = [
            StoredTurn(1, "user", canned.upper() + "?" if i < 3 else f"question {i} " * 4),
            StoredTurn(2, "assistant", f"answer {i}"),
            StoredTurn(3, "user", stock if i % 2 == 0 else f"follow up number {i} " * 3),
            StoredTurn(4, "assistant", "Thanks!"),  # short: ignored even though shared
        ]
        prints.add(f"c{i:03d}", turns)
    shared = prints.analyse()
    assert shared.cap == 10 and shared.grouped == 1
    assert sorted(shared.links) == [("c000", "c001"), ("c000", "c002")]
    assert len(shared.widespread) == 1 and shared.widespread[0].role == "user"
    assert len(shared.widespread[0].occurrences) == 50
    members = [
        SplitMember(f"c{i:03d}", None, "template", "A", None, "Fear", "Fees") for i in range(100)
    ]
    assignments = assign_splits(members, None, seed=1, links=shared.links)
    assert len({assignments[c] for c in ("c000", "c001", "c002")}) == 1
    report = shared.report(assignments)
    assert report["across_splits"] == {"user": 1} and report["grouped_turns"] == 1
    assert report["examples"][0]["conversations"] == 50


# --------------------------------------------------------------------------- stratification


def test_minimisation_balances_every_tier_persona_and_cell() -> None:
    members = [
        SplitMember(
            f"c{i:04d}",
            f"chunk{i // 2}" if i % 5 == 0 else None,
            ("template", "scenario", "edge_case")[i % 3],
            ("A", "B", "C", "D")[(i // 3) % 4],
            None,
            ("Fear", "Hope")[(i // 12) % 2],
            "Fees",
        )
        for i in range(600)
    ]
    ratios = {"train": 0.8, "validation": 0.1, "test": 0.1}
    assignments = assign_splits(members, ratios, seed=5)
    counts = Counter(assignments.values())
    assert all(abs(counts[s] - r * 600) <= 3 for s, r in ratios.items()), counts
    strat = stratification(assignments, members)
    assert strat["tier"]["max_gap"] <= 0.03 and strat["persona"]["max_gap"] <= 0.04, strat
    assert strat["cell"]["max_gap"] <= 0.06 and strat["cell"]["splittable_cells"] == 8
    assert assign_splits(list(reversed(members)), ratios, seed=5) == assignments
    assert assign_splits(members, ratios, seed=6) != assignments


# --------------------------------------------------------------------------- tokens


def test_token_summary_percentile_and_thresholds() -> None:
    values = [*range(1, 101), 3000, 5000, 9000, 20000]
    s = summarise(values)
    assert (s["min"], s["max"], s["records"]) == (1, 20000, 104)
    assert s["p95"] == sorted(values)[98]  # nearest rank: ceil(0.95 * 104) = 99th value
    assert s["over"] == {"2048": 4, "4096": 3, "8192": 2, "16384": 1}
    assert summarise([])["max"] is None


def test_approximation_counts_the_system_prompt_and_every_turn() -> None:
    turns = [StoredTurn(1, "user", "x" * 35), StoredTurn(2, "assistant", "y" * 7)]
    assert approx_tokens(None, turns) == 10 + 2 + 4 * 2
    assert approx_tokens("z" * 7, turns) == 20 + 2 + 4


class FakeCounter:
    name = "fake"
    model = "claude-test"

    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail

    def count(self, system: str | None, messages: Any) -> int:
        self.calls += 1
        if self.fail:
            raise RuntimeError("rate limited")
        return 2 * approx_tokens(system, [StoredTurn(0, m["role"], m["content"]) for m in messages])


def test_a_counter_calibrates_from_a_bounded_sample() -> None:
    counter = FakeCounter()
    tally = TokenTally(counter=counter, sample_size=5)
    for i in range(40):
        tally.add("train", f"c{i}", "sys", [StoredTurn(1, "user", "hello " * i)])
    tally.finish()
    assert counter.calls == 5  # never one call per record
    tokenizer = tally.tokenizer()
    assert tokenizer["method"] == "calibrated" and tokenizer["ratio_to_approximation"] == 2.0
    assert tally.per_record()["c10"] == 2 * approx_tokens(
        "sys", [StoredTurn(1, "user", "hello " * 10)]
    )


def test_a_small_export_is_counted_exactly_and_a_failing_counter_falls_back() -> None:
    tally = TokenTally(counter=FakeCounter(), sample_size=10)
    for i in range(3):
        tally.add("all", f"c{i}", None, [StoredTurn(1, "user", "hi")])
    assert tally.tokenizer()["method"] == "exact"
    failing = TokenTally(counter=FakeCounter(fail=True), sample_size=10)
    failing.add("all", "c0", None, [StoredTurn(1, "user", "hi")])
    assert failing.tokenizer()["name"] == "approximation"
    assert "rate limited" in failing.tokenizer()["note"]
    assert failing.per_record() == {"c0": approx_tokens(None, [StoredTurn(1, "user", "hi")])}


# --------------------------------------------------------------------------- names, bundle


def test_names_say_dataset_format_split_count_and_date() -> None:
    label = dataset_label(["Harbor Pine: Client Advisory!"])
    assert label == "harbor-pine-client-advisory"
    assert dataset_label(["a", "b"]) == "all-datasets"
    day = date(2026, 12, 2)
    assert (
        export_file_name(label, "hf_messages", day, extension="jsonl", split="train", count=72)
        == "harbor-pine-client-advisory-hf-messages-train-72-conversations-2026-12-02.jsonl"
    )
    assert (
        export_file_name(label, "csv", day, extension="json", count=1, suffix="manifest")
        == "harbor-pine-client-advisory-csv-1-conversations-2026-12-02-manifest.json"
    )
    with pytest.raises(ValidationError):
        export_file_name(label, "csv", day, extension="../x")


def test_bundle_zips_spooled_files_in_order_with_their_sha256() -> None:
    import hashlib

    spooled = SpooledFile("data.json")
    spooled.write(b'"conversations":[1]}')
    spooled.header = b'{"metadata":{},'
    bundle = Bundle()
    digest = bundle.add_file(spooled)
    bundle.add_text("README.md", "hi")
    finished = bundle.finish()
    data = finished.read_at(0, finished.size)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.read("data.json") == b'{"metadata":{},"conversations":[1]}'
        assert digest == hashlib.sha256(z.read("data.json")).hexdigest()
        assert z.read("README.md") == b"hi"
    bundle.close()
    spooled.close()


# --------------------------------------------------------------------------- trainer configs


def test_configs_exist_for_the_formats_trainers_read() -> None:
    files = {"train": "x-train.jsonl", "validation": "x-validation.jsonl"}
    assert llamafactory_dataset_info(ExportFormat.CSV, "x", files) is None
    assert axolotl_yaml(ExportFormat.ANTHROPIC, files, 100) is None
    info = llamafactory_dataset_info(ExportFormat.ANTHROPIC, "x", files)
    assert info is not None and info["x_train"]["columns"] == {
        "messages": "messages",
        "system": "system",
    }
    assert sequence_length(1500) == 2048 and sequence_length(None) == 1024


# --------------------------------------------------------------------------- fine-tune rules


def test_hyperparameters_are_range_checked_with_bedrock_defaults() -> None:
    assert hyperparameters(None, None, None) == {
        "epochCount": 2,
        "batchSize": 32,
        "learningRateMultiplier": 1.0,
    }
    for bad in (
        (0, None, None),
        (11, None, None),
        (None, 3, None),
        (None, None, 2.5),
        (2.5, None, None),
    ):
        with pytest.raises(ValidationError):
            hyperparameters(*bad)
    assert remaining_budget(None, 5, 1) is None
    assert remaining_budget(10, 2.5, 1.25) == 6.25
    name = resource_name("brightrun", "local", "ft_" + "a" * 80)
    assert len(name) <= 63 and "_" not in name


def test_spooled_conversations_come_back_equal_with_their_turns() -> None:
    from datetime import timedelta

    from chalicelib.domain.models import QualityReport, utcnow
    from chalicelib.export.service import freeze, thaw

    now = utcnow()
    full = conv(3).conversation.model_copy(
        update={
            "quality": QualityReport(score=7.5, checks=[], duplicate_of="conv_001"),
            "approved_at": now,
            "updated_at": now + timedelta(seconds=1),
            "chunk_id": "chunk-9",
            "actual_cost_usd": 0.0123,
        }
    )
    item = ExportItem(full, conv(3).turns)
    back = thaw(freeze(item))
    assert back.conversation == full
    assert back.conversation.model_dump() == full.model_dump()
    assert back.conversation.model_fields_set == full.model_fields_set
    assert back.conversation.tier is Tier.TEMPLATE and back.conversation.flagged == full.flagged
    assert list(back.turns) == list(item.turns)
    assert all(isinstance(t, StoredTurn) for t in back.turns)


@pytest.mark.parametrize("fmt", list(ExportFormat))
def test_a_validated_stream_skips_only_the_conversation_check(fmt: ExportFormat) -> None:
    items = ITEMS[:7]  # all expressible
    options = ExportOptions(export_date=datetime(2026, 12, 2, tzinfo=UTC))
    outputs = []
    for validated in (False, True):
        stream = FileStream(get_writer(fmt), options, ExportReport(format=fmt), validated)
        body = b"".join(c for item in items if (c := stream.add(item))) + stream.close()
        outputs.append(stream.header() + body)
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize("fmt", list(ExportFormat))
def test_rendered_ahead_then_labelled_is_the_record_rendered_with_its_label(
    fmt: ExportFormat,
) -> None:
    """A split export renders each record before its split is known and puts the label
    in later: the file must be byte for byte the one written with the splits known."""
    from chalicelib.export.formats import ANY_SPLIT, aggregate_values

    items = ITEMS[:7]
    splits = {
        it.conversation.conversation_id: ("train", "test")[i % 2] for i, it in enumerate(items)
    }
    day = datetime(2026, 12, 2, tzinfo=UTC)
    writer = get_writer(fmt)
    for split in ("train", "test"):
        mine = [it for it in items if splits[it.conversation.conversation_id] == split]
        options = ExportOptions(system_prompt="Be kind.", splits=splits, export_date=day)
        direct = FileStream(writer, options, ExportReport(format=fmt), label=split)
        expected = b"".join(c for it in mine if (c := direct.add(it))) + direct.close()
        ahead = ExportOptions(
            system_prompt="Be kind.",
            splits=ANY_SPLIT if writer.labels != "none" else None,
            export_date=day,
        )
        routed = FileStream(writer, options, ExportReport(format=fmt), label=split)
        chunks = []
        for it in mine:
            text, reasons = writer.render_unlabelled(it, ahead)
            assert text is not None and reasons == []
            values = aggregate_values(it.conversation, len(it.turns))
            if chunk := routed.add_rendered(writer.labelled(text, split), values):
                chunks.append(chunk)
        body = b"".join(chunks) + routed.close()
        assert routed.header() + body == direct.header() + expected


@pytest.mark.parametrize("fmt", ["hf_messages", "csv", "generic", "sharegpt"])
def test_a_record_holding_the_placeholder_is_not_rendered_ahead(fmt: str) -> None:
    from chalicelib.export.formats import ANY_SPLIT, SPLIT_PLACEHOLDER

    tricky = conv(1, text=SPLIT_PLACEHOLDER)
    text, reasons = get_writer(fmt).render_unlabelled(tricky, ExportOptions(splits=ANY_SPLIT))
    assert text is None and reasons == []  # the export renders it once its split is known
    twice = ExportItem(
        conv(2).conversation, [StoredTurn(1, "user", "a"), StoredTurn(1, "assistant", "b")]
    )
    bad, why = get_writer(fmt).render_unlabelled(twice, ExportOptions(splits=ANY_SPLIT))
    assert bad is None and why  # inexpressible in every format: the reasons come back


def test_compact_ids_give_back_what_was_appended_in_order() -> None:
    from chalicelib.export.tokens import CompactIds

    ids = CompactIds()
    values = ["conv_a", "conv_é_ü", "", "conv_" + "x" * 300, "conv_b"]
    for v in values:
        ids.append(v)
    assert len(ids) == len(values)
    assert list(ids) == values
    assert list(ids) == values  # iterable again
    assert list(CompactIds()) == []
