"""Export: approved conversations -> a validated training file in S3 -> presigned download.

The file is streamed: conversations are read page by page from the dataset index
(GSI), their turns fetched per page, written by the pure format writer and uploaded
with S3 multipart, so memory stays flat in dataset size. Requests with more than
``INLINE_LIMIT`` conversations run off the request path (an async Lambda invoke).

Runs are at-least-once (Lambda retries and may repeat async deliveries): a run first
claims the pending export with a conditional write, and only the claiming run writes the
file, audits and finishes it; any other delivery returns the export as it is. A pending
export that no run can still finish (older than ``STALE_AFTER_SECONDS``) is failed when
it is read or listed.
"""

from __future__ import annotations

import io
import json
import logging
import queue
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any, Final

from chalicelib.domain.errors import (
    DomainError,
    ExportFailedError,
    UnprocessableError,
    ValidationError,
)
from chalicelib.domain.models import (
    Conversation,
    ConversationStatus,
    ExportFormat,
    ExportRecord,
    ExportStatus,
    new_id,
    utcnow,
)
from chalicelib.export.filenames import export_filename
from chalicelib.export.formats import (
    ExportItem,
    ExportOptions,
    ExportReport,
    GenericWriter,
    TurnLike,
    get_writer,
    write_validated,
)
from chalicelib.export.splits import (
    SplitMember,
    assign_splits,
    split_manifest,
    split_member,
    validate_ratios,
)
from chalicelib.generation.service import system_prompt_for
from chalicelib.review.audit import AuditLog
from chalicelib.store.export_source import DynamoExportSource
from chalicelib.store.repositories import (
    DynamoConversationRepository,
    DynamoDatasetRepository,
    DynamoExportRepository,
)

log = logging.getLogger(__name__)

INLINE_LIMIT = 300
PART_SIZE = 8 * 1024 * 1024  # S3 multipart parts must be >= 5 MiB except the last
PAGE = 100  # conversations whose turns are read together (one BatchGetItem)
PREFETCH_PAGES = 8  # pages read ahead of the writer (bounds memory: 800 conversations)
TURN_READERS = 4  # BatchGetItem calls in flight at once (the writer waits less)
FILTER_KEYS = ("persona", "emotion", "topic", "intent", "tone", "tier")
# No run outlives Lambda's hard limit (run_export's lambda_timeout in .chalice/config.json
# is this maximum; the API's own timeout is far shorter), so a pending export whose run
# started (or, never claimed, that was created) longer ago than the limit plus a minute's
# margin has no live run: reading or listing it fails it with a message saying so.
LAMBDA_MAX_SECONDS: Final = 900
STALE_AFTER_SECONDS: Final = LAMBDA_MAX_SECONDS + 60

# Conversation fields each writer reads beyond the base fields the source always reads
# (``None``: every field). Reading less keeps the big metadata off the wire; a unit test
# renders every format from a conversation reduced to these fields to keep them honest.
FORMAT_FIELDS: Final[dict[ExportFormat, frozenset[str] | None]] = {
    ExportFormat.OPENAI: frozenset(),
    ExportFormat.ANTHROPIC: frozenset(),
    ExportFormat.SHAREGPT: frozenset(),
    ExportFormat.CSV: frozenset(),
    ExportFormat.HF_MESSAGES: frozenset(
        {
            "title",
            "arc",
            "scenario",
            "edge_case_type",
            "chunk_id",
            "document_id",
            "model",
            "template_id",
            "template_version",
            "actual_cost_usd",
        }
    ),
    ExportFormat.GENERIC: None,
}
SPLIT_FIELDS: Final = frozenset({"chunk_id", "quality"})  # what assign_splits groups on


def _matches(c: Conversation, filters: dict[str, Any]) -> bool:
    if c.status != ConversationStatus.APPROVED:
        return False
    for dim in FILTER_KEYS:
        values = filters.get(dim)
        if values:
            value = getattr(c, dim)
            value = value.value if hasattr(value, "value") else value
            if value not in values:
                return False
    qmin, qmax = filters.get("quality_min"), filters.get("quality_max")
    if qmin is not None and (c.quality_score is None or c.quality_score < qmin):
        return False
    return not (qmax is not None and (c.quality_score is None or c.quality_score > qmax))


def stale_reason(record: ExportRecord, now: datetime) -> str | None:
    """Why a pending export can no longer finish, or None while a run may still be at it."""
    if record.status != ExportStatus.PENDING:
        return None
    since = record.started_at or record.created_at
    if now - since <= timedelta(seconds=STALE_AFTER_SECONDS):
        return None
    minutes = STALE_AFTER_SECONDS // 60
    if record.started_at is None:
        return f"the export never started: no worker picked it up within {minutes} minutes"
    return (
        f"the export did not finish: its worker stopped (a run cannot take longer than "
        f"{minutes} minutes)"
    )


class _ClaimLost(Exception):
    """The run's claim was taken away (the export timed out) before the run finished."""


class S3MultipartSink:
    """Buffers bytes into >= 8 MiB parts; aborts the upload on any failure.

    With ``hold_first_part`` the first part is kept back and uploaded last, with the
    ``prefix`` given to ``close`` in front of it: a header that is only known once the body
    is written still goes first in the object (part numbers, not upload order, decide the
    order), and every part but the last stays >= 5 MiB.

    The multipart upload starts with the first part sent: a file that ends within one
    part (every export of up to ~2,000 conversations) is stored with one PutObject
    instead of three calls."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        key: str,
        content_type: str,
        filename: str,
        hold_first_part: bool = False,
    ) -> None:
        self.s3, self.bucket, self.key = s3, bucket, key
        self.object_args: dict[str, Any] = {
            "ContentType": content_type,
            "ContentDisposition": f'attachment; filename="{filename}"',
            "ServerSideEncryption": "AES256",
        }
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []
        self.buffer = io.BytesIO()
        self.size = 0
        self.hold_first_part = hold_first_part
        self.first: bytes | None = None

    def write(self, data: bytes) -> None:
        self.buffer.write(data)
        self.size += len(data)
        if self.buffer.tell() >= PART_SIZE:
            self._flush()

    def _upload(self, number: int, body: bytes) -> None:
        if self.upload_id is None:
            self.upload_id = self.s3.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, **self.object_args
            )["UploadId"]
        etag = self.s3.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=body
        )["ETag"]
        self.parts.append({"PartNumber": number, "ETag": etag})

    def _flush(self) -> None:
        body = self.buffer.getvalue()
        self.buffer = io.BytesIO()
        if self.hold_first_part and self.first is None:
            self.first = body
            return
        if not body and (self.parts or self.hold_first_part):
            return
        self._upload(len(self.parts) + (2 if self.hold_first_part else 1), body)

    def close(self, prefix: bytes = b"") -> None:
        if prefix and not self.hold_first_part:
            raise ValueError("a prefix needs hold_first_part")
        if self.upload_id is None:  # nothing sent yet: the whole file is in memory
            body = prefix + (self.first or b"") + self.buffer.getvalue()
            self.buffer = io.BytesIO()
            self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=body, **self.object_args)
            self.size += len(prefix)
            return
        if self.hold_first_part:
            self._flush()  # the tail after the held part, if any
            self._upload(1, prefix + (self.first or b""))
            self.size += len(prefix)
        else:
            self._flush()
        self.s3.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": sorted(self.parts, key=lambda p: p["PartNumber"])},
        )

    def abort(self) -> None:
        if self.upload_id is not None:
            self.s3.abort_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id
            )


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_DONE: Final = object()


def prefetched_pages(
    conversations: Iterable[Conversation],
    fetch_turns: Callable[[list[str]], Mapping[str, Sequence[TurnLike]]],
    page_size: int = PAGE,
    depth: int | None = None,
) -> Iterator[ExportItem]:
    """Conversations with their turns, read ahead of the consumer.

    A producer thread drives ``conversations`` (the dataset query) and hands every page to
    a small pool that reads its turns, while the caller renders and uploads what came
    before: reads overlap writing. At most ``depth`` pages (default ``PREFETCH_PAGES``)
    wait in the queue, so memory stays flat. Errors surface in the caller; leaving early
    stops the producer. ``depth`` 0 reads in the caller's thread (no read-ahead).
    """
    depth = PREFETCH_PAGES if depth is None else depth
    if depth <= 0:
        it = iter(conversations)
        while page := list(islice(it, page_size)):
            turns = fetch_turns([c.conversation_id for c in page])
            for c in page:
                yield ExportItem(c, turns.get(c.conversation_id, ()))
        return
    pending: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    pool = ThreadPoolExecutor(max_workers=TURN_READERS, thread_name_prefix="export-turns")

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                pending.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            page: list[Conversation] = []
            for c in conversations:
                page.append(c)
                if len(page) >= page_size:
                    ids = [x.conversation_id for x in page]
                    if not put((page, pool.submit(fetch_turns, ids))):
                        return
                    page = []
                if stop.is_set():
                    return
            if page:
                ids = [x.conversation_id for x in page]
                if not put((page, pool.submit(fetch_turns, ids))):
                    return
            put(_DONE)
        except BaseException as e:  # handed to the consumer, which re-raises
            put(_Failed(e))

    producer = threading.Thread(target=produce, name="export-pages", daemon=True)
    producer.start()
    try:
        while True:
            item = pending.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            page, future = item
            fetched: Mapping[str, Sequence[TurnLike]] = future.result()
            for c in page:
                yield ExportItem(c, fetched.get(c.conversation_id, ()))
    finally:
        stop.set()
        producer.join(timeout=5)  # it stops at its next step; never wait on a slow read
        pool.shutdown(wait=False, cancel_futures=True)


class ExportService:
    def __init__(
        self,
        s3: Any,
        bucket: str,
        presign_seconds: int,
        datasets: DynamoDatasetRepository,
        conversations: DynamoConversationRepository,
        exports: DynamoExportRepository,
        audit: AuditLog,
        run_async: Callable[[str, str], None] | None = None,
        source: DynamoExportSource | None = None,
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.presign_seconds = min(presign_seconds, 900)
        self.datasets = datasets
        self.conversations = conversations
        self.exports = exports
        self.audit = audit
        self.run_async = run_async
        self.source = source or DynamoExportSource()

    # ------------------------------------------------------------------ sources
    def _approved(
        self,
        tenant_id: str,
        dataset_ids: list[str],
        filters: dict[str, Any],
        fields: Collection[str] | None = None,
        page_size: int | None = None,
    ) -> Iterator[Conversation]:
        for dataset_id in dataset_ids:
            for c in self.source.approved(tenant_id, dataset_id, filters, fields, page_size):
                # The query filters in DynamoDB; this re-check keeps the rule in one place
                # (and covers filter lists longer than DynamoDB's IN allows).
                if _matches(c, filters):
                    yield c

    def _with_turns(
        self, tenant_id: str, conversations: Iterable[Conversation]
    ) -> Iterator[ExportItem]:
        return prefetched_pages(
            conversations, lambda ids: self.source.turns(tenant_id, ids), page_size=PAGE
        )

    def _count(
        self, tenant_id: str, dataset_ids: list[str], filters: dict[str, Any], stop_at: int
    ) -> int:
        """Matching conversations, counting no further than ``stop_at`` (the request path
        only needs "none", "a few" or "too many to write inline"). Counted in DynamoDB
        where its filter is exact, else by reading and re-checking."""
        n = 0
        for dataset_id in dataset_ids:
            counted = self.source.count_approved(tenant_id, dataset_id, filters, stop_at - n)
            if counted is None:
                for _ in self._approved(
                    tenant_id, [dataset_id], filters, frozenset(), page_size=stop_at
                ):
                    n += 1
                    if n >= stop_at:
                        break
            else:
                n += counted
            if n >= stop_at:
                break
        return n

    def _dataset_ids(self, tenant_id: str, filters: dict[str, Any]) -> list[str]:
        dataset_id = filters.get("dataset_id")
        if dataset_id:
            self.datasets.get(tenant_id, dataset_id)  # 404 for unknown/foreign ids
            return [dataset_id]
        return [d.dataset_id for d in self.datasets.list_all(tenant_id)]

    def _system_prompt(self, tenant_id: str, dataset_ids: list[str]) -> str | None:
        if len(dataset_ids) != 1:
            return None
        return system_prompt_for(self.datasets.get(tenant_id, dataset_ids[0]))

    # ------------------------------------------------------------------ preview
    def preview(
        self, tenant_id: str, fmt: ExportFormat, filters: dict[str, Any], limit: int = 3
    ) -> dict[str, Any]:
        """The first ``limit`` approved conversations written exactly as the export writes
        them: JSONL formats one parsed record each, generic its conversation objects (and
        the header as ``metadata``), CSV the file text (header row included)."""
        dataset_ids = self._dataset_ids(tenant_id, filters)
        approved = list(
            islice(
                self._approved(tenant_id, dataset_ids, filters, FORMAT_FIELDS[fmt], page_size=100),
                limit,
            )
        )
        writer = get_writer(fmt)
        options = ExportOptions(system_prompt=self._system_prompt(tenant_id, dataset_ids))
        items = list(self._with_turns(tenant_id, approved))
        stream, report = write_validated(fmt, items, options)
        text = b"".join(stream).decode()
        metadata: dict[str, Any] | None = None
        records: list[Any]
        if fmt == ExportFormat.GENERIC:
            document = json.loads(text)
            records, metadata = document["conversations"], document["metadata"]
        elif fmt == ExportFormat.CSV:
            records = [text] if report.written else []
        else:
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        return {
            "format": fmt.value,
            "extension": writer.extension,
            "content_type": writer.content_type,
            "records": records,
            "metadata": metadata,
            "skipped": report.skipped_records(),
        }

    # ------------------------------------------------------------------ create / run
    def create(
        self,
        tenant_id: str,
        actor: str,
        fmt: ExportFormat,
        filters: dict[str, Any],
        split: dict[str, float] | None,
        options: dict[str, Any] | None = None,
    ) -> ExportRecord:
        """Validate, then write inline (small) or hand to the async worker (large).

        Bad input (unknown dataset, bad split, nothing approved) raises before anything is
        stored. The request path counts no further than ``INLINE_LIMIT`` + 1."""
        fmt = get_writer(fmt).format  # a ValidationError for an unknown format
        if split is not None:
            split = validate_ratios(split)
        dataset_ids = self._dataset_ids(tenant_id, filters)
        count = self._count(tenant_id, dataset_ids, filters, stop_at=INLINE_LIMIT + 1)
        if count == 0:
            raise ValidationError(
                "no approved conversations match: approve some first, or widen the filters",
                {"filters": filters},
            )
        record = ExportRecord(
            tenant_id=tenant_id,
            format=fmt,
            filters={**filters, **({"options": options} if options else {})},
            split=split,
            created_by=actor,
        )
        self.exports.save(record)
        details: dict[str, Any] = {
            "export_id": record.export_id,
            "status": ExportStatus.FAILED.value,
        }
        if count > INLINE_LIMIT and self.run_async is not None:
            try:
                self.run_async(tenant_id, record.export_id)
            except Exception as e:
                log.exception("could not start export %s", record.export_id)
                if self._fail(record, f"could not start the export: {e}") is None:
                    # The invoke reached a worker after all, which claimed the export.
                    return self.exports.get(tenant_id, record.export_id)
                raise ExportFailedError(f"the export could not be started: {e}", details) from e
            return record
        record, error = self._run(tenant_id, record.export_id)
        if record.status == ExportStatus.FAILED:
            # The export is stored (history, audit) as failed; the answer is an error that
            # names it, never a 2xx that looks like success.
            details["error_message"] = record.error_message
            if isinstance(error, DomainError):
                error.details.update(details)
                raise error
            raise ExportFailedError(
                f"the export failed: {record.error_message}", details
            ) from error
        return record

    def _fail(self, record: ExportRecord, message: str) -> ExportRecord | None:
        """pending -> failed (and audited) if ``record``'s run still owns the export (or,
        unclaimed, nobody does); None when another run or a timeout got there first."""
        failed = record.model_copy(
            update={
                "status": ExportStatus.FAILED,
                "error_message": message[:1000],
                "finished_at": utcnow(),
            }
        )
        if not self.exports.save_if_pending(failed, record.claim_token):
            return None
        self.audit.record(
            failed.tenant_id,
            failed.created_by,
            "export.failed",
            "export",
            failed.export_id,
            after={
                "format": failed.format.value,
                "filters": failed.filters,
                "split": failed.split,
                "error": failed.error_message,
                "skipped": len(failed.skipped),
            },
        )
        return failed

    def run(self, tenant_id: str, export_id: str) -> ExportRecord:
        """Write a pending export: the async worker's entry, delivered at least once.

        Only the run whose conditional claim succeeds writes, audits and finishes it; any
        other delivery (a duplicate, a retry, one arriving after a timeout) returns the
        export as it is. A failure is stored on the export and audited, not raised, so
        Lambda does not retry what a retry cannot fix."""
        return self._run(tenant_id, export_id)[0]

    def _run(self, tenant_id: str, export_id: str) -> tuple[ExportRecord, Exception | None]:
        record = self.exports.get(tenant_id, export_id)
        if record.status != ExportStatus.PENDING or record.claim_token is not None:
            return record, None
        claimed = self.exports.claim(record, new_id("run"))
        if claimed is None:  # another delivery claimed it between our read and our claim
            return self.exports.get(tenant_id, export_id), None
        try:
            done = self._write(claimed.model_copy())
        except _ClaimLost:
            log.warning("export %s timed out before its run finished; files removed", export_id)
            return self.exports.get(tenant_id, export_id), None
        except Exception as e:
            log.exception("export %s failed", export_id)
            if isinstance(e, UnprocessableError):
                claimed.skipped = e.details.get("skipped", [])
            failed = self._fail(claimed, str(e))
            return failed or self.exports.get(tenant_id, export_id), e
        self.audit.record(
            tenant_id,
            done.created_by,
            "export.create",
            "export",
            export_id,
            after={
                "format": done.format.value,
                "conversation_count": done.conversation_count,
                "filename": done.filename,
                "filters": done.filters,
                "split": done.split,
                "skipped": len(done.skipped),
            },
        )
        return done, None

    def _write(self, record: ExportRecord) -> ExportRecord:
        tenant_id = record.tenant_id
        filters = {k: v for k, v in record.filters.items() if k != "options"}
        options_in = record.filters.get("options") or {}
        dataset_ids = self._dataset_ids(tenant_id, filters)
        writer = get_writer(record.format)
        fields = FORMAT_FIELDS[record.format]
        date = datetime.now(UTC).date()
        split_convs: dict[str, SplitMember] = {}
        assignments: dict[str, str] | None = None
        if record.split:
            # Splits need every group before the first line is written: one light pass,
            # keeping only what splitting reads of each conversation.
            split_convs = {
                c.conversation_id: split_member(c)
                for c in self._approved(tenant_id, dataset_ids, filters, SPLIT_FIELDS)
            }
            assignments = assign_splits(split_convs.values(), record.split, seed=0)
        options = ExportOptions(
            system_prompt=self._system_prompt(tenant_id, dataset_ids),
            assistant_weights=bool(options_in.get("assistant_weights")),
            splits=assignments,
        )
        late: list[str] = []  # approved after the split was computed: not in this file
        seen: set[str] = set()

        def source() -> Iterator[ExportItem]:
            conversations = self._approved(tenant_id, dataset_ids, filters, fields)
            for cwt in self._with_turns(tenant_id, conversations):
                cid = cwt.conversation.conversation_id
                if assignments is not None:
                    if cid not in assignments:
                        late.append(cid)
                        continue
                    seen.add(cid)
                yield cwt

        # The descriptive name carries the count, known only once the file is written:
        # downloads get it from their presigned URL (ResponseContentDisposition), so the
        # object is written once under a fixed key (a copy to a named key would upload
        # the whole file a second time), stored with a dated name as its own default.
        key = f"exports/{tenant_id}/{record.export_id}/training-data.{writer.extension}"
        deferred = isinstance(writer, GenericWriter)
        sink = S3MultipartSink(
            self.s3,
            self.bucket,
            key,
            writer.content_type,
            f"training-data-{date.isoformat()}-approved.{writer.extension}",
            hold_first_part=deferred,
        )
        try:
            if isinstance(writer, GenericWriter):
                # One read of the data: the header goes in front once the body is known.
                report = ExportReport(format=writer.format)
                body, header = writer.write_deferred_header(source(), options, report)
                for chunk in body:
                    sink.write(chunk)
                sink.close(prefix=header())
            else:
                stream, report = write_validated(record.format, source, options)
                for chunk in stream:
                    sink.write(chunk)
                sink.close()
        except BaseException:
            try:
                sink.abort()
            except Exception:  # keep the original error; S3 expires orphan uploads
                log.exception("could not abort the multipart upload of %s", key)
            raise
        for cid in late:
            report.skip(cid, ["approved after the split was computed; export again to include it"])
        count = report.written
        if count == 0:
            self.s3.delete_object(Bucket=self.bucket, Key=key)
            raise UnprocessableError(
                f"none of the approved conversations can be written as {record.format.value}",
                {"skipped": report.skipped_records()},
            )
        filename = export_filename(date, "approved", count=count, extension=writer.extension)
        files = [
            {
                "split": None,
                "key": key,
                "filename": filename,
                "count": count,
                "bytes": report.bytes_written,
            }
        ]
        manifest: dict[str, Any] | None = None
        if assignments is not None and record.split is not None:
            # Describe the file as written: inexpressible conversations are not in it.
            skipped = {s.conversation_id for s in report.skipped}
            written = [c for cid, c in split_convs.items() if cid in seen and cid not in skipped]
            manifest = split_manifest(
                {c.conversation_id: assignments[c.conversation_id] for c in written},
                written,
                record.split,
            )
            manifest_name = filename.rsplit(".", 1)[0] + "-manifest.json"
            manifest_key = f"exports/{tenant_id}/{record.export_id}/{manifest_name}"
            manifest_body = json.dumps(manifest, indent=2).encode()
            self.s3.put_object(
                Bucket=self.bucket,
                Key=manifest_key,
                Body=manifest_body,
                ContentType="application/json",
                ContentDisposition=f'attachment; filename="{manifest_name}"',
                ServerSideEncryption="AES256",
            )
            files.append(
                {
                    "split": "manifest",
                    "key": manifest_key,
                    "filename": manifest_name,
                    "count": count,
                    "bytes": len(manifest_body),
                }
            )
        record.status = ExportStatus.READY
        record.filename = filename
        record.files = files
        record.conversation_count = count
        record.counts = {
            "written": count,
            "skipped": len(report.skipped),
            **(report.split_counts or {}),
        }
        record.skipped = report.skipped_records()
        record.stats = {
            "bytes": report.bytes_written,
            "warnings": report.warnings,
            "manifest": manifest,
        }
        record.finished_at = utcnow()
        if not self.exports.save_if_pending(record, record.claim_token):
            for f in files:  # the export was failed meanwhile: leave no file behind
                self.s3.delete_object(Bucket=self.bucket, Key=f["key"])
            raise _ClaimLost(record.export_id)
        return record

    # ------------------------------------------------------------------ downloads
    def expire_if_stale(self, record: ExportRecord, now: datetime | None = None) -> ExportRecord:
        """A pending export that no run can still finish, failed (with the reason) and
        audited; any other export as it is."""
        reason = stale_reason(record, now or utcnow())
        if reason is None:
            return record
        failed = self._fail(record, f"{reason}; export again")
        return failed or self.exports.get(record.tenant_id, record.export_id)

    def get_with_url(self, tenant_id: str, export_id: str) -> dict[str, Any]:
        record = self.expire_if_stale(self.exports.get(tenant_id, export_id))
        out: dict[str, Any] = {"export": record, "download_url": None, "files": []}
        if record.status == ExportStatus.READY:
            for f in record.files:
                url = self.presign(f["key"], f["filename"])
                out["files"].append({**f, "download_url": url})
            out["download_url"] = out["files"][0]["download_url"] if out["files"] else None
            out["expires_in"] = self.presign_seconds
        return out

    def presign(self, key: str, filename: str) -> str:
        return str(
            self.s3.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": key,
                    "ResponseContentDisposition": f'attachment; filename="{filename}"',
                },
                ExpiresIn=self.presign_seconds,
            )
        )

    def history(self, tenant_id: str) -> list[ExportRecord]:
        now = utcnow()
        return [self.expire_if_stale(r, now) for r in self.exports.list_all(tenant_id)]
