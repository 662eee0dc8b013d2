"""Export service plumbing: read-ahead pages, field projections per format, the generic
writer's single pass, and the multipart sink's held first part (against a strict fake
of S3's multipart rules: no moto, so no AWS state shared with a running stack)."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain.models import (
    Conversation,
    ConversationStatus,
    ConversationWithTurns,
    ExportFormat,
    ExportRecord,
    ExportStatus,
    QualityCheck,
    QualityReport,
    Tier,
    Turn,
)
from chalicelib.export import service as export_service
from chalicelib.export.formats import ExportOptions, ExportReport, GenericWriter, get_writer
from chalicelib.export.service import (
    FORMAT_FIELDS,
    LAMBDA_MAX_SECONDS,
    STALE_AFTER_SECONDS,
    SpoolSink,
    prefetched_pages,
    stale_reason,
)
from chalicelib.store.export_source import BASE_FIELDS, CONVERSATION_FIELDS

EXPORT_DATE = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def full_conversation(cid: str) -> ConversationWithTurns:
    """Every field set to a distinctive value, so a field a writer reads but the
    projection leaves out shows up as a difference."""
    conv = Conversation(
        tenant_id="tenant_1",
        dataset_id="ds_1",
        conversation_id=cid,
        persona="Pre-Retiree",
        emotion="Fear",
        topic="Fees",
        intent="Understand",
        tone="Warm",
        tier=Tier.SCENARIO,
        arc="reassure",
        scenario="fee question",
        edge_case_type="none",
        chunk_id="chunk-7",
        document_id="doc-3",
        title="A fee question",
        status=ConversationStatus.APPROVED,
        quality_score=8.5,
        quality=QualityReport(
            score=8.5, checks=[QualityCheck(name="turns", passed=True, score=1, weight=1)]
        ),
        turn_count=2,
        estimated_cost_usd=0.03,
        actual_cost_usd=0.02,
        generation_duration_ms=1234,
        input_tokens=100,
        output_tokens=200,
        model="claude-sonnet-4-6",
        template_id="tpl_1",
        template_version=3,
        parse_path="tool_use",
        job_id="job_1",
        generation_attempts=1,
        approved_by="reviewer@example.com",
        approved_at=EXPORT_DATE,
        reviewed_by="reviewer@example.com",
        reviewed_at=EXPORT_DATE,
        reviewer_notes="good",
        generated_at=EXPORT_DATE,
        created_at=EXPORT_DATE,
        updated_at=EXPORT_DATE,
        version=4,
    )
    turns = [
        Turn(turn_number=1, role="user", content="What does the fee cover?"),
        Turn(turn_number=2, role="assistant", content="Planning, management and reviews."),
    ]
    return ConversationWithTurns(conversation=conv, turns=turns)


@pytest.mark.parametrize("fmt", list(ExportFormat))
def test_projected_fields_render_the_same_records(fmt: ExportFormat) -> None:
    """The export reads only BASE_FIELDS + FORMAT_FIELDS[fmt]; rendering from such a
    reduced conversation must give byte-identical output."""
    full = full_conversation("conv_1")
    fields = FORMAT_FIELDS[fmt]
    names = CONVERSATION_FIELDS if fields is None else BASE_FIELDS | fields
    data = full.conversation.model_dump()
    reduced = ConversationWithTurns(
        conversation=Conversation.model_validate({k: data[k] for k in names}),
        turns=full.turns,
    )
    options = ExportOptions(system_prompt="Be kind.", export_date=EXPORT_DATE)
    writer = get_writer(fmt)
    assert b"".join(writer.write([reduced], options)) == b"".join(writer.write([full], options))


def test_generic_leaves_out_internal_bookkeeping() -> None:
    cwt = full_conversation("conv_1")
    cwt.conversation.claim_token = "job_1-1-abcd"
    text = b"".join(get_writer(ExportFormat.GENERIC).write([cwt], ExportOptions()))
    (record,) = json.loads(text)["conversations"]
    assert not {"tenant_id", "version", "claim_token"} & record.keys()
    assert record["job_id"] == "job_1" and record["conversation_id"] == "conv_1"


def test_every_conversation_field_is_read_for_generic() -> None:
    stored_elsewhere = set(Conversation.model_fields) - set(CONVERSATION_FIELDS)
    assert stored_elsewhere == set(), stored_elsewhere
    assert FORMAT_FIELDS[ExportFormat.GENERIC] is None


def test_generic_single_pass_equals_two_pass_and_counts_what_it_wrote() -> None:
    good = [full_conversation(f"conv_{i}") for i in range(3)]
    bad = full_conversation("conv_bad")
    bad = ConversationWithTurns(conversation=bad.conversation, turns=[])  # inexpressible
    items = [good[0], bad, good[1], good[2]]
    options = ExportOptions(
        system_prompt="Be kind.",
        export_date=EXPORT_DATE,
        splits={"conv_0": "train", "conv_1": "test", "conv_2": "train"},
    )
    writer = GenericWriter()
    two_pass = b"".join(writer.write(items, options, ExportReport(format=writer.format)))
    report = ExportReport(format=writer.format)
    body, header = writer.write_deferred_header(iter(items), options, report)  # one-shot
    with pytest.raises(RuntimeError):
        header()
    body_bytes = b"".join(body)
    head = header()
    assert head + body_bytes == two_pass
    assert report.written == 3 and [s.conversation_id for s in report.skipped] == ["conv_bad"]
    assert report.bytes_written == len(two_pass)
    assert report.warnings == []


def _cwt(i: int) -> Conversation:
    return full_conversation(f"conv_{i:04d}").conversation.model_copy(
        update={"conversation_id": f"conv_{i:04d}"}
    )


def _turns_for(ids: list[str]) -> dict[str, list[Turn]]:
    return {cid: [Turn(turn_number=1, role="user", content=cid)] for cid in ids}


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_prefetched_pages_keep_order_and_pair_turns(depth: int) -> None:
    convs = [_cwt(i) for i in range(257)]
    calls: list[int] = []

    def fetch(ids: list[str]) -> dict[str, list[Turn]]:
        calls.append(len(ids))
        return _turns_for(ids)

    out = list(prefetched_pages(iter(convs), fetch, page_size=100, depth=depth))
    assert [c.conversation.conversation_id for c in out] == [c.conversation_id for c in convs]
    assert all(c.turns[0].content == c.conversation.conversation_id for c in out)
    assert calls == [100, 100, 57]


def test_prefetched_pages_surface_errors_from_the_reader() -> None:
    def conversations() -> Iterator[Conversation]:
        yield from (_cwt(i) for i in range(150))
        raise ConnectionError("query failed")

    seen = 0
    with pytest.raises(ConnectionError, match="query failed"):
        for _ in prefetched_pages(conversations(), _turns_for, page_size=100, depth=2):
            seen += 1
    assert seen == 100  # the complete first page, then the error

    def failing_turns(ids: list[str]) -> dict[str, list[Turn]]:
        raise TimeoutError("batch get failed")

    with pytest.raises(TimeoutError, match="batch get failed"):
        list(prefetched_pages(iter([_cwt(1)]), failing_turns, depth=2))


def test_prefetched_pages_read_ahead_is_bounded_and_stops_when_left() -> None:
    produced = 0
    lock = threading.Lock()

    def conversations() -> Iterator[Conversation]:
        nonlocal produced
        for i in range(100_000):
            with lock:
                produced += 1
            yield _cwt(i)

    threads_before = threading.active_count()
    pages = prefetched_pages(conversations(), _turns_for, page_size=10, depth=2)
    next(pages)
    time.sleep(0.3)  # let the producer run as far as it may
    with lock:
        ahead = produced
    # the page being consumed + 2 queued + 1 being handed over, at most
    assert ahead <= 10 * 5, ahead
    pages.close()  # leaving early
    deadline = time.time() + 5
    while threading.active_count() > threads_before and time.time() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= threads_before
    with lock:
        assert produced == ahead or produced <= ahead + 10


# --------------------------------------------------------------------------- S3 sink


class StrictFakeS3:
    """The multipart rules S3 enforces, in memory (no moto: an in-process ``mock_aws``
    resets moto's process-wide backends, which would wipe a running local stack).

    complete_multipart_upload fails like S3 does when parts are not listed in ascending
    order, an ETag does not match, or a part other than the last is under 5 MiB."""

    MIN_PART = 5 * 1024 * 1024

    def __init__(self) -> None:
        self.uploads: dict[str, dict[int, bytes]] = {}
        self.objects: dict[str, bytes] = {}
        self.puts = 0

    def create_multipart_upload(self, Bucket: str, Key: str, **kw: object) -> dict[str, str]:
        upload_id = f"up-{len(self.uploads) + 1}"
        self.uploads[upload_id] = {}
        return {"UploadId": upload_id}

    def upload_part(
        self, Bucket: str, Key: str, UploadId: str, PartNumber: int, Body: bytes
    ) -> dict[str, str]:
        assert 1 <= PartNumber <= 10_000
        self.uploads[UploadId][PartNumber] = bytes(Body)
        return {"ETag": hashlib.md5(Body).hexdigest()}

    def complete_multipart_upload(
        self, Bucket: str, Key: str, UploadId: str, MultipartUpload: dict[str, Any]
    ) -> None:
        parts = MultipartUpload["Parts"]
        stored = self.uploads.pop(UploadId)
        numbers = [p["PartNumber"] for p in parts]
        if numbers != sorted(numbers) or len(set(numbers)) != len(numbers) or not numbers:
            raise ValueError("InvalidPartOrder")
        for i, p in enumerate(parts):
            body = stored[p["PartNumber"]]
            if p["ETag"] != hashlib.md5(body).hexdigest():
                raise ValueError("InvalidPart")
            if i < len(parts) - 1 and len(body) < self.MIN_PART:
                raise ValueError("EntityTooSmall")
        self.objects[Key] = b"".join(stored[n] for n in numbers)

    def abort_multipart_upload(self, Bucket: str, Key: str, UploadId: str) -> None:
        del self.uploads[UploadId]

    def put_object(self, Bucket: str, Key: str, Body: bytes, **kw: object) -> None:
        assert kw["ContentDisposition"] and kw["ServerSideEncryption"] == "AES256"
        self.puts += 1
        self.objects[Key] = bytes(Body)


def spool_sink(s3: Any, key: str, content_type: str, hold: bool = False) -> Any:
    from chalicelib.export.bundle import SpooledFile

    spooled = SpooledFile(key)
    return SpoolSink(s3, "exports", key, content_type, f"{key}.out", spooled, hold), spooled


@pytest.mark.parametrize("size", [0, 1000, 9 * 1024 * 1024 + 17, 20 * 1024 * 1024, 25 << 20])
def test_sink_held_first_part_goes_first(size: int) -> None:
    s3 = StrictFakeS3()
    body = bytes(i % 251 for i in range(size))
    prefix = b'{"metadata":{},'
    sink, spooled = spool_sink(s3, "k", "application/json", hold=True)
    for i in range(0, len(body), 1 << 20):
        sink.write(body[i : i + (1 << 20)])
    sink.close(prefix=prefix)
    assert s3.objects["k"] == prefix + body
    assert sink.size == len(body) + len(prefix)
    assert spooled.size == len(body)  # the spool holds the body; the header is sent
    parts = -(-size // export_service.PART_SIZE)
    if parts <= 2:  # the held part and the rest fit one PutObject
        assert sink.parts == [] and s3.puts == 1
    else:
        assert len(sink.parts) == parts and s3.puts == 0
    assert s3.uploads == {}


@pytest.mark.parametrize("size", [0, 1000, 17 * 1024 * 1024, 16 * 1024 * 1024])
def test_sink_streams_parts_in_order(size: int) -> None:
    s3 = StrictFakeS3()
    body = bytes(i % 241 for i in range(size))
    sink, _ = spool_sink(s3, "k", "text/csv")
    for i in range(0, len(body), 3 << 20):
        sink.write(body[i : i + (3 << 20)])
    sink.close()
    assert s3.objects["k"] == body
    small = size < export_service.PART_SIZE
    parts = -(-size // export_service.PART_SIZE)
    assert (s3.puts, len(sink.parts)) == ((1, 0) if small else (0, parts))  # 8 MiB parts


def test_sink_holds_at_most_one_part_in_memory() -> None:
    """Parts are read back from the spool: the sink keeps no buffer of its own."""
    s3 = StrictFakeS3()
    sink, _ = spool_sink(s3, "k", "text/csv")
    chunk = bytes(1 << 20)
    for _ in range(20):
        sink.write(chunk)
        assert not any(isinstance(v, bytes | bytearray) for v in vars(sink).values())
    sink.close()
    assert len(s3.objects["k"]) == 20 << 20


def test_sink_without_hold_rejects_a_prefix_and_aborts() -> None:
    s3 = StrictFakeS3()
    sink, _ = spool_sink(s3, "k2", "text/csv")
    sink.write(b"a,b\n")
    with pytest.raises(ValueError):
        sink.close(prefix=b"x")
    sink.abort()
    assert s3.uploads == {} and s3.objects == {}
    sink, _ = spool_sink(s3, "k3", "text/csv")
    sink.write(bytes(export_service.PART_SIZE + 1))  # one part sent: an upload is open
    assert len(s3.uploads) == 1
    sink.abort()
    assert s3.uploads == {} and s3.objects == {}


# ---------------------------------------------------------------------------- stale runs


def _pending(**fields: Any) -> ExportRecord:
    return ExportRecord(tenant_id="tenant_1", format=ExportFormat.OPENAI, **fields)


def test_a_pending_export_is_stale_only_after_the_longest_possible_run() -> None:
    limit = timedelta(seconds=STALE_AFTER_SECONDS)
    start = EXPORT_DATE
    queued = _pending(created_at=start)
    assert stale_reason(queued, start + limit) is None
    assert "never started" in (stale_reason(queued, start + limit + timedelta(seconds=1)) or "")
    # a claimed run is timed from when it started, not from when the export was created
    running = _pending(created_at=start - 2 * limit, started_at=start, claim_token="run_1")
    assert stale_reason(running, start + limit) is None
    reason = stale_reason(running, start + limit + timedelta(seconds=1))
    assert reason is not None and "did not finish" in reason
    assert f"{STALE_AFTER_SECONDS // 60} minutes" in reason
    for status in (ExportStatus.READY, ExportStatus.FAILED):  # finished: never stale
        done = _pending(created_at=start - 2 * limit, status=status)
        assert stale_reason(done, start) is None


def test_no_lambda_that_runs_an_export_outlives_the_stale_limit() -> None:
    """The lease is only safe if every function that runs an export (the async worker and
    the API's inline path) is stopped by Lambda before an export counts as stale."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    functions = config["lambda_functions"]
    for name in ("run_export", "api_handler"):
        timeout = functions[name].get("lambda_timeout", config["lambda_timeout"])
        assert timeout <= LAMBDA_MAX_SECONDS < STALE_AFTER_SECONDS, name
    assert STALE_AFTER_SECONDS - LAMBDA_MAX_SECONDS >= 60  # margin for clocks and retries


@pytest.mark.parametrize("score", [8.5, 9, None])
def test_the_export_decoder_reads_records_as_pynamodb_does(score: float | None) -> None:
    """The export builds no pynamodb model per item: its decoder must give every
    conversation field exactly the value (and type) pynamodb's own decoding gives."""
    from chalicelib.store.export_source import record_decoder
    from chalicelib.store.mapping import record_from_domain
    from chalicelib.store.records import ConversationRecord, tenant_key

    conv = full_conversation("conv_decoded").conversation.model_copy(
        update={"quality_score": score, "arc": None, "input_tokens": 12_345_678_901}
    )
    record = record_from_domain(
        ConversationRecord,
        conv,
        dataset_key=tenant_key("tenant_1", "ds_1"),
        updated_ms=1_764_158_400_123,
        search_text="text",
        deleted=False,
    )
    raw = record.serialize()
    raw["arc"] = {"NULL": True}  # an explicit NULL reads as absent, as in pynamodb
    names = tuple(ConversationRecord.get_attributes())
    decoded = record_decoder(ConversationRecord.get_attributes(), names)(raw)
    expected = ConversationRecord.from_raw_data(raw)
    for name in names:
        value = getattr(expected, name)
        if value is None:
            assert name not in decoded, name
        else:
            assert decoded[name] == value and type(decoded[name]) is type(value), name
    assert Conversation.model_validate(
        {n: v for n, v in decoded.items() if n in Conversation.model_fields}
    ) == conv.model_copy(update={"arc": None})


class ThrottlingDynamo:
    """BatchGetItem that serves ``per_call`` keys per call (the rest come back as
    UnprocessedKeys, as DynamoDB does when throttled); 0 serves none."""

    def __init__(self, per_call: int, turns: Any = None) -> None:
        self.per_call, self.calls = per_call, 0
        self.turns = (
            turns if turns is not None else [{"turn_number": 1, "role": "user", "content": "hi"}]
        )

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        ((table, request),) = RequestItems.items()
        served, rest = request["Keys"][: self.per_call], request["Keys"][self.per_call :]
        items = [
            {"conversation_id": k["conversation_id"], "turns": {"S": json.dumps(self.turns)}}
            for k in served
        ]
        out: dict[str, Any] = {"Responses": {table: items}}
        if rest:
            out["UnprocessedKeys"] = {table: {**request, "Keys": rest}}
        return out


def test_throttled_turn_reads_continue_while_they_make_progress() -> None:
    from chalicelib.store.export_source import UNPROCESSED_BACKOFF_MAX_SECONDS, DynamoExportSource

    dynamo, slept = ThrottlingDynamo(per_call=7), []
    ids = [f"c{i}" for i in range(250)]
    out = DynamoExportSource(sleep=slept.append, client=dynamo).turns("t1", ids)
    assert sorted(out) == sorted(ids) and out["c0"][0].content == "hi"
    assert dynamo.calls == 15 + 15 + 8  # requests of 100, 100 and 50 keys, 7 keys a round
    assert max(slept) <= UNPROCESSED_BACKOFF_MAX_SECONDS and len(slept) == dynamo.calls - 3


def test_turn_reads_give_up_after_rounds_without_progress() -> None:
    from chalicelib.store.export_source import UNPROCESSED_RETRIES, DynamoExportSource

    dynamo, slept = ThrottlingDynamo(per_call=0), []
    with pytest.raises(RuntimeError, match="no turns in"):
        DynamoExportSource(sleep=slept.append, client=dynamo).turns("t1", ["c1", "c2"])
    assert dynamo.calls == UNPROCESSED_RETRIES + 1  # the first round and its retries
    assert slept == sorted(slept) and slept[-1] <= 1.0  # growing, capped


def test_damaged_stored_turns_name_their_conversation() -> None:
    from chalicelib.store.export_source import DynamoExportSource

    dynamo = ThrottlingDynamo(per_call=100, turns=[{"role": "user", "content": "no number"}])
    with pytest.raises(ValueError, match="conversation c1 are damaged"):
        DynamoExportSource(client=dynamo).turns("t1", ["c1"])


class CountingDynamo:
    """Query with Select COUNT over pages of the given counts."""

    def __init__(self, pages: list[int]) -> None:
        self.pages, self.requests = pages, []

    def query(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        i = len(self.requests) - 1
        out: dict[str, Any] = {"Count": self.pages[i], "ScannedCount": self.pages[i]}
        if i + 1 < len(self.pages):
            out["LastEvaluatedKey"] = {"page": {"N": str(i)}}
        return out


def test_counting_happens_in_dynamodb_and_stops_early() -> None:
    from chalicelib.store.export_source import DynamoExportSource

    dynamo = CountingDynamo([120, 0, 150, 90, 500])
    assert DynamoExportSource(client=dynamo).count_approved("t1", "ds_1", {}, 301) == 301
    assert len(dynamo.requests) == 4  # 120 + 0 + 150 + 90 >= 301: the last page is not read
    first = dynamo.requests[0]
    assert first["Select"] == "COUNT" and first["Limit"] == 301
    assert "ProjectionExpression" not in first and "approved" in json.dumps(first)
    assert dynamo.requests[1]["ExclusiveStartKey"] == {"page": {"N": "0"}}
    assert DynamoExportSource(client=CountingDynamo([3, 4])).count_approved("t1", "d", {}, 301) == 7


def test_filter_lists_longer_than_in_allows_are_not_counted_in_dynamodb() -> None:
    from chalicelib.store.export_source import DynamoExportSource

    dynamo = CountingDynamo([5])
    topics = [f"topic {i}" for i in range(101)]
    assert (
        DynamoExportSource(client=dynamo).count_approved("t1", "d", {"topic": topics}, 301) is None
    )
    assert dynamo.requests == []


@pytest.mark.parametrize(
    "duplicate",
    [None, "conv_0042", 'conv_"quoted"\\back', "conv_ünï", "conv_\u2028"],
)
def test_duplicate_of_is_read_from_the_stored_report_as_pynamodb_decodes_it(
    duplicate: str | None,
) -> None:
    """The split reads ``quality.duplicate_of`` without decoding the report: the value
    must be the one decoding the stored JSON gives, whatever the other fields hold."""
    from chalicelib.domain.models import QualityCheck, QualityReport
    from chalicelib.store.export_source import duplicate_of
    from chalicelib.store.mapping import record_from_domain
    from chalicelib.store.records import ConversationRecord, tenant_key

    report = QualityReport(
        score=6.0,
        checks=[
            QualityCheck(
                name="duplicate_of",
                passed=False,
                score=0.1,
                weight=1.0,
                detail='"duplicate_of": "conv_decoy" inside a detail',
            )
        ],
        duplicate_of=duplicate,
    )
    conv = full_conversation("conv_dup").conversation.model_copy(update={"quality": report})
    record = record_from_domain(
        ConversationRecord,
        conv,
        dataset_key=tenant_key("tenant_1", "ds_1"),
        updated_ms=1,
        search_text="t",
        deleted=False,
    )
    raw = record.serialize()
    assert duplicate_of(raw["quality"]) == duplicate
    assert ConversationRecord.from_raw_data(raw).quality["duplicate_of"] == duplicate
    assert duplicate_of(None) is None and duplicate_of({"NULL": True}) is None
    # another layout (not what pynamodb writes) is still read right, the slow way
    spaced = {"S": json.dumps(report.model_dump(mode="json"), separators=(",", ":"))}
    assert duplicate_of(spaced) == duplicate


@pytest.mark.parametrize("count", [0, 1, 3])
def test_the_streamed_manifest_is_the_manifest_json_dumps_writes(count: int) -> None:
    """The per-record list streams into the file: the bytes are those of dumping the
    whole manifest at once (a reader cannot tell the difference)."""
    from chalicelib.export.bundle import SpooledFile
    from chalicelib.export.service import RECORDS_SLOT, write_manifest

    records = [(f"conv_{i}_é", "train" if i % 2 else None, 100 + i) for i in range(count)]
    manifest = {
        "manifest_version": 3,
        "files": [{"split": None, "filename": "x.jsonl"}],
        "records": RECORDS_SLOT,
        "trainer_configs": ["axolotl.yaml"],
    }
    spooled = SpooledFile("manifest.json")
    try:
        write_manifest(manifest, iter(records), spooled)
        written = b"".join(spooled.chunks())
    finally:
        spooled.close()
    whole = {
        **manifest,
        "records": [{"conversation_id": c, "split": s, "tokens": t} for c, s, t in records],
    }
    assert written == json.dumps(whole, indent=1, ensure_ascii=False).encode("utf-8")
