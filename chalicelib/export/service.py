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

import json
import logging
import pickle
import queue
import re
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from itertools import islice
from typing import IO, Any, Final

from chalicelib.audit.log import AuditLog
from chalicelib.domain.errors import (
    DomainError,
    ExportFailedError,
    UnprocessableError,
    ValidationError,
)
from chalicelib.domain.filters import EXPORT_FILTERS, in_quality_range, matches_filters
from chalicelib.domain.models import (
    Conversation,
    ConversationStatus,
    Dataset,
    ExportFormat,
    ExportRecord,
    ExportStatus,
    QualityReport,
    StoredTurn,
    new_id,
    utcnow,
)
from chalicelib.domain.ports import (
    ApprovedConversations,
    DatasetStore,
    ExportStore,
    TokenCounter,
)
from chalicelib.export.bundle import Bundle, SpooledFile
from chalicelib.export.filenames import dataset_label, export_file_name
from chalicelib.export.formats import (
    ANY_SPLIT,
    AggregateValues,
    ExportItem,
    ExportOptions,
    ExportReport,
    FileStream,
    FormatWriter,
    GenericWriter,
    SkippedConversation,
    TurnLike,
    aggregate_values,
    get_writer,
    write_validated,
    writer_for,
)
from chalicelib.export.leakage import SharedTurns, TurnFingerprints
from chalicelib.export.splits import (
    SPLIT_NAMES,
    SplitMember,
    assign_splits,
    split_manifest,
    split_member,
    stratification,
    validate_ratios,
)
from chalicelib.export.tokens import CompactIds, TokenTally
from chalicelib.export.trainers import (
    BEDROCK_BASE_MODEL,
    BEDROCK_DEFAULT_HYPERPARAMETERS,
    bedrock_job,
    readme,
    trainer_configs,
)
from chalicelib.generation.service import system_prompt_for
from chalicelib.version import product_info

log = logging.getLogger(__name__)

INLINE_LIMIT = 300
PART_SIZE = 8 * 1024 * 1024  # S3 multipart parts must be >= 5 MiB except the last
PAGE = 100  # conversations whose turns are read together (one BatchGetItem)
PREFETCH_PAGES = 8  # pages read ahead of the writer (bounds memory: 800 conversations)
TURN_READERS = 4  # BatchGetItem calls in flight at once (the writer waits less)
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
MANIFEST_VERSION: Final = 2
MAX_SEED: Final = 2**63 - 1
ROLE_PLACEHOLDER: Final = "arn:aws:iam::<account-id>:role/<bedrock-customization-role>"


def _matches(c: Conversation, filters: dict[str, Any]) -> bool:
    return (
        c.status == ConversationStatus.APPROVED
        and matches_filters(c, filters, EXPORT_FILTERS)
        and in_quality_range(
            c.quality_score, filters.get("quality_min"), filters.get("quality_max")
        )
    )


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


class SpoolSink:
    """Uploads a file that is being written to a local spool (``SpooledFile``): each 8 MiB
    part is read back from the spool when it is complete, so no part is buffered in
    memory besides the one being sent (an export writes up to three files at once and
    spools them all for its bundle anyway). Only one part is held at a time whatever
    the number of files, and a file that ends within one part (two when the first is
    held) is stored with one PutObject. ``hold_first_part`` sends part 1 last, read back from the spool with the
    ``prefix`` given to ``close`` in front (a header known only once the body is)."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        key: str,
        content_type: str,
        filename: str,
        spool: SpooledFile,
        hold_first_part: bool = False,
    ) -> None:
        self.s3, self.bucket, self.key, self.spool = s3, bucket, key, spool
        self.object_args: dict[str, Any] = {
            "ContentType": content_type,
            "ContentDisposition": f'attachment; filename="{filename}"',
            "ServerSideEncryption": "AES256",
        }
        self.hold_first_part = hold_first_part
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []
        self.sent = 0  # spool bytes uploaded (part 1 counts as sent while held)
        self.size = 0

    def write(self, data: bytes) -> None:
        self.spool.write(data)
        self.size += len(data)
        while self.spool.size - self.sent >= PART_SIZE:
            if self.hold_first_part and self.sent == 0:
                self.sent = PART_SIZE  # part 1 waits for the prefix, on disk
                continue
            number = len(self.parts) + (2 if self.hold_first_part else 1)
            self._upload(number, self.spool.read_at(self.sent, PART_SIZE))
            self.sent += PART_SIZE

    def _upload(self, number: int, body: bytes) -> None:
        if self.upload_id is None:
            self.upload_id = self.s3.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, **self.object_args
            )["UploadId"]
        etag = self.s3.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=body
        )["ETag"]
        self.parts.append({"PartNumber": number, "ETag": etag})

    def close(self, prefix: bytes = b"") -> None:
        if prefix and not self.hold_first_part:
            raise ValueError("a prefix needs hold_first_part")
        self.size += len(prefix)
        total = self.spool.size
        if self.upload_id is None:  # no part sent: the file is at most two parts long
            body = prefix + self.spool.read_at(0, total)
            self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=body, **self.object_args)
            return
        if total > self.sent:
            number = len(self.parts) + (2 if self.hold_first_part else 1)
            self._upload(number, self.spool.read_at(self.sent, total - self.sent))
        if self.hold_first_part:
            self._upload(1, prefix + self.spool.read_at(0, PART_SIZE))
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
        datasets: DatasetStore,
        exports: ExportStore,
        source: ApprovedConversations,
        audit: AuditLog,
        run_async: Callable[[str, str], None] | None = None,
        token_counter: TokenCounter | None = None,
        bedrock_role_arn: str | None = None,
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.presign_seconds = min(presign_seconds, 900)
        self.datasets = datasets
        self.exports = exports
        self.audit = audit
        self.run_async = run_async
        self.source = source
        self.token_counter = token_counter  # None: the stated approximation
        self.bedrock_role_arn = bedrock_role_arn

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
        seed: int | None = None,
    ) -> ExportRecord:
        """Validate, then write inline (small) or hand to the async worker (large).

        Bad input (unknown dataset, bad split, nothing approved) raises before anything is
        stored. The request path counts no further than ``INLINE_LIMIT`` + 1. The split's
        seed (default 0) is recorded: the same seed over the same data gives the same
        split."""
        fmt = get_writer(fmt).format  # a ValidationError for an unknown format
        if split is not None:
            split = validate_ratios(split)
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED
        ):
            raise ValidationError(
                f"seed must be an integer from 0 to {MAX_SEED}", {"field": "seed"}
            )
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
            seed=(seed or 0) if split is not None else None,
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
                "files": [f["filename"] for f in done.files],
                "filters": done.filters,
                "split": done.split,
                "seed": done.seed,
                "skipped": len(done.skipped),
            },
        )
        return done, None

    def _write(self, record: ExportRecord) -> ExportRecord:
        tenant_id = record.tenant_id
        filters = {k: v for k, v in record.filters.items() if k != "options"}
        options_in = record.filters.get("options") or {}
        dataset_ids = self._dataset_ids(tenant_id, filters)
        datasets = [self.datasets.get(tenant_id, d) for d in dataset_ids]
        label = dataset_label([d.name for d in datasets])
        fmt = record.format
        fields = FORMAT_FIELDS[fmt]
        now = utcnow()
        day = now.date()
        system_prompt = system_prompt_for(datasets[0]) if len(datasets) == 1 else None
        base_options = ExportOptions(
            system_prompt=system_prompt,
            assistant_weights=bool(options_in.get("assistant_weights")),
            neutralise_formulas=options_in.get("csv_formula_neutralisation", True) is not False,
        )
        writer = writer_for(fmt, base_options)
        tally = TokenTally(counter=self.token_counter)
        run = _Run(self, record, writer, label, day)
        try:
            if record.split:
                plan = self._split_plan(
                    record, dataset_ids, filters, writer, fields, base_options, tally
                )
                run.skipped.extend(plan.skipped)
                options = replace(base_options, splits=plan.assignments)
                run.write_split_files(plan, options, tally)
                plan.close()
            else:
                source = self._with_turns(
                    tenant_id, self._approved(tenant_id, dataset_ids, filters, fields)
                )
                run.write_files(None, base_options, source, tally)
            count = sum(f.stream.records for f in run.files)
            if count == 0:
                raise UnprocessableError(
                    f"none of the approved conversations can be written as {fmt.value}",
                    {"skipped": run.skipped_records()},
                )
            tally.finish()
            manifest = self._manifest(record, datasets, filters, options_in, run, tally, now)
            if record.split:
                manifest["split"] = plan.manifest_section(record, run)
            run.finish(manifest, tally, self.bedrock_role_arn)
        except BaseException:
            run.discard()
            raise
        finally:
            run.close()
        record.status = ExportStatus.READY
        record.filename = run.primary_filename
        record.files = run.file_entries
        record.conversation_count = count
        record.counts = {
            "written": count,
            "skipped": len(run.skipped),
            **({f.split: f.stream.records for f in run.files} if record.split else {}),
        }
        record.skipped = run.skipped_records()
        record.stats = {
            "bytes": sum(f.stream.report.bytes_written for f in run.files),
            "warnings": [w for f in run.files for w in f.stream.report.warnings],
            "manifest": _summary(manifest),
            "tokens": manifest["tokens"],
        }
        record.finished_at = utcnow()
        if not self.exports.save_if_pending(record, record.claim_token):
            run.delete_objects()  # the export was failed meanwhile: leave no file behind
            raise _ClaimLost(record.export_id)
        return record

    def _split_plan(
        self,
        record: ExportRecord,
        dataset_ids: list[str],
        filters: dict[str, Any],
        writer: FormatWriter,
        fields: frozenset[str] | None,
        options: ExportOptions,
        tally: TokenTally,
    ) -> _SplitPlan:
        """The one read of the data for a split export. Each conversation is checked and
        rendered as it is read (overlapping the reads, as without a split), its split
        label left as a placeholder, fingerprinted, counted, and spooled to local disk;
        then the split is assigned over what can be written (whole groups per split)."""
        tenant_id = record.tenant_id
        read = None if fields is None else fields | {"chunk_id"}
        render_options = options if writer.labels == "none" else replace(options, splits=ANY_SPLIT)
        counts_header = isinstance(writer, GenericWriter)
        system = options.system_prompt
        plan = _SplitPlan()
        fingerprints = TurnFingerprints()
        page: list[_Entry] = []
        # Only conversations that are someone's near-duplicate are noted (a few);
        # written by the reading thread before their page is handed over.
        duplicates: dict[str, str] = {}

        def conversations() -> Iterator[Conversation]:
            for dataset_id in dataset_ids:
                rows = self.source.approved_with_duplicates(tenant_id, dataset_id, filters, read)
                for c, duplicate_of in rows:
                    if _matches(c, filters):  # the rule in one place (see _approved)
                        if duplicate_of is not None:
                            duplicates[c.conversation_id] = duplicate_of
                        yield c

        for item in self._with_turns(tenant_id, conversations()):
            c = item.conversation
            cid = c.conversation_id
            text, reasons = writer.render_unlabelled(item, render_options)
            if reasons:
                plan.skipped.append(SkippedConversation(cid, reasons))
                continue
            plan.members.append(split_member(c, duplicates.get(cid)))
            fingerprints.add(cid, item.turns)
            approx = tally.sample(system, item.turns)
            if text is None:  # its own text holds the placeholder: rendered once split
                page.append((cid, None, approx, None, freeze(item)))
            else:
                aggregate = aggregate_values(c, len(item.turns)) if counts_header else None
                page.append((cid, text, approx, aggregate, None))
            if len(page) >= PAGE:
                plan.spool(page)
                page = []
        if page:
            plan.spool(page)
        assert record.split is not None
        plan.shared = fingerprints.analyse()
        plan.assignments = assign_splits(
            plan.members, record.split, seed=record.seed or 0, links=plan.shared.links
        )
        plan.counts = Counter(plan.assignments.values())
        return plan

    def _manifest(
        self,
        record: ExportRecord,
        datasets: list[Dataset],
        filters: dict[str, Any],
        options_in: Mapping[str, Any],
        run: _Run,
        tally: TokenTally,
        now: datetime,
    ) -> dict[str, Any]:
        return {
            "manifest_version": MANIFEST_VERSION,
            "product": product_info(),
            "export_id": record.export_id,
            "created_at": record.created_at.isoformat(),
            "written_at": now.isoformat(),
            "created_by": record.created_by,
            "format": record.format.value,
            "datasets": [{"dataset_id": d.dataset_id, "name": d.name} for d in datasets],
            "filters": {**filters, "status": "approved"},
            "options": {
                "assistant_weights": bool(options_in.get("assistant_weights")),
                "csv_formula_neutralisation": options_in.get("csv_formula_neutralisation", True)
                is not False,
            },
            "files": [],  # filled in by the run once every file is hashed
            "conversation_count": tally.count,
            "skipped": run.skipped_records(),
            "tokens": tally.statistics(),
            "split": None,
            # One entry per record, streamed into the file by write_manifest (a list of
            # 100,000 dicts, and its JSON, would be the export's largest allocation).
            "records": RECORDS_SLOT,
        }

    # ------------------------------------------------------------------ downloads
    def expire_if_stale(self, record: ExportRecord, now: datetime | None = None) -> ExportRecord:
        """A pending export that no run can still finish, failed (with the reason) and
        audited; any other export as it is."""
        reason = stale_reason(record, now or utcnow())
        if reason is None:
            return record
        failed = self._fail(record, f"{reason}; export again")
        return failed or self.exports.get(record.tenant_id, record.export_id)

    def create_with_url(
        self,
        tenant_id: str,
        actor: str,
        fmt: ExportFormat,
        filters: dict[str, Any],
        split: dict[str, float] | None,
        options: dict[str, Any] | None = None,
        seed: int | None = None,
    ) -> dict[str, Any]:
        """``create``, answered as ``get_with_url`` answers: ready with its download
        links when written inline, pending when the worker writes it."""
        record = self.create(tenant_id, actor, fmt, filters, split, options, seed=seed)
        return self.get_with_url(tenant_id, record.export_id)

    def get_with_url(self, tenant_id: str, export_id: str) -> dict[str, Any]:
        record = self.expire_if_stale(self.exports.get(tenant_id, export_id))
        out: dict[str, Any] = {"export": record, "download_url": None, "files": []}
        if record.status == ExportStatus.READY:
            for f in record.files:
                url = self.presign(f["key"], f["filename"])
                out["files"].append({**f, "download_url": url})
            # The export's own file: the data file, or with a split the bundle of all.
            primary = [f for f in out["files"] if f["filename"] == record.filename]
            chosen = primary or out["files"]
            out["download_url"] = chosen[0]["download_url"] if chosen else None
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


# ---------------------------------------------------------------------- one export's run


RECORDS_SLOT = "\x00records\x00"


def write_manifest(
    manifest: Mapping[str, Any],
    records: Iterable[tuple[str, str | None, int]],
    out: SpooledFile,
) -> None:
    """The manifest as ``json.dumps(..., indent=1)`` would write it, with the per-record
    list (at ``RECORDS_SLOT``) streamed from ``records`` one entry at a time."""
    head, tail = json.dumps(manifest, indent=1, ensure_ascii=False).split(
        json.dumps(RECORDS_SLOT), 1
    )
    out.write(head.encode("utf-8"))
    opened = False
    for cid, split, tokens in records:
        entry = json.dumps(
            {"conversation_id": cid, "split": split, "tokens": tokens},
            indent=1,
            ensure_ascii=False,
        ).replace("\n", "\n  ")  # one level deeper than its own dumps
        out.write((",\n  " if opened else "[\n  ").encode("utf-8") + entry.encode("utf-8"))
        opened = True
    out.write(("\n ]" if opened else "[]").encode("utf-8") + tail.encode("utf-8"))


def _summary(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest without its per-record lists (the export record stays far below
    DynamoDB's item size; the full manifest is a file of the export)."""
    out = {k: v for k, v in manifest.items() if k != "records"}
    if isinstance(out.get("split"), dict):
        out["split"] = {k: v for k, v in out["split"].items() if k != "conversations"}
    return out


# A conversation spooled as plain values: pickling the pydantic model (its state dict,
# enums and fields-set) and 12 NamedTuple turns cost ~45 us a conversation, this ~12 us.
_CONVERSATION_FIELDS: Final = tuple(Conversation.model_fields)
_Frozen = tuple[tuple[Any, ...], tuple[str, ...], list[tuple[int, str, str]]]


_QUALITY_AT: Final = _CONVERSATION_FIELDS.index("quality")


def freeze(item: ExportItem) -> _Frozen:
    c = item.conversation
    values = tuple(map(c.__dict__.__getitem__, _CONVERSATION_FIELDS))
    quality = values[_QUALITY_AT]
    if quality is not None:
        # The nested report as JSON: its models pickle at ~45 us, JSON goes both ways
        # in ~15 us (and round-trips its floats and datetimes exactly).
        values = (
            *values[:_QUALITY_AT],
            quality.model_dump_json(),
            *values[_QUALITY_AT + 1 :],
        )
    turns = [(t.turn_number, t.role, t.content) for t in item.turns]
    return values, tuple(c.model_fields_set), turns


def thaw(frozen: _Frozen) -> ExportItem:
    """The item ``freeze`` took, rebuilt as pydantic rebuilds an unpickled model
    (``BaseModel.__setstate__``): the fields' values as they were validated."""
    values, fields_set, turns = frozen
    fields = dict(zip(_CONVERSATION_FIELDS, values, strict=True))
    if isinstance(fields["quality"], str):
        fields["quality"] = QualityReport.model_validate_json(fields["quality"])
    c = object.__new__(Conversation)
    object.__setattr__(c, "__dict__", fields)
    object.__setattr__(c, "__pydantic_fields_set__", set(fields_set))
    object.__setattr__(c, "__pydantic_extra__", None)
    object.__setattr__(c, "__pydantic_private__", None)
    return ExportItem(c, list(map(StoredTurn._make, turns)))


# A spooled conversation of a split export: id, its rendered record (split label left as
# a placeholder) or None, approximate tokens, what a generic header counts of it, and,
# when it could not be rendered ahead, the conversation itself.
_Entry = tuple[str, str | None, int, AggregateValues | None, _Frozen | None]


@dataclass(slots=True)
class _SplitPlan:
    """A split export between its read and its write: the conversations spooled to local
    disk (pages pickled as read), what splitting read of each, and the assignment."""

    members: list[SplitMember] = field(default_factory=list)
    skipped: list[SkippedConversation] = field(default_factory=list)
    assignments: dict[str, str] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    shared: SharedTurns | None = None
    _file: IO[bytes] = field(default_factory=lambda: tempfile.TemporaryFile(prefix="split-"))  # noqa: SIM115

    def spool(self, page: list[_Entry]) -> None:
        data = pickle.dumps(page, protocol=pickle.HIGHEST_PROTOCOL)
        self._file.write(len(data).to_bytes(8, "little"))
        self._file.write(data)

    def entries(self) -> Iterator[_Entry]:
        f = self._file
        f.seek(0)
        while header := f.read(8):
            yield from pickle.loads(f.read(int.from_bytes(header, "little")))

    def close(self) -> None:
        self._file.close()

    def manifest_section(self, record: ExportRecord, run: _Run) -> dict[str, Any]:
        """Seed, ratios asked and obtained, shares against the whole, groups, leakage and
        which conversation went where: described as written."""
        assert record.split is not None
        written = {cid for f in run.files for cid in f.written}
        assignments = {cid: s for cid, s in self.assignments.items() if cid in written}
        members = [m for m in self.members if m.conversation_id in written]
        links = self.shared.links if self.shared is not None else []
        base = split_manifest(assignments, members, record.split, links)
        total = base["total"]
        section: dict[str, Any] = {
            "seed": record.seed or 0,
            "ratios_requested": dict(record.split),
            "ratios_obtained": base["shares"],
            "stratified_by": ["tier", "persona", "cell (emotion x topic)"],
            "grouped_by": [
                "source chunk",
                "near-duplicate links (quality.duplicate_of)",
                "shared near-verbatim turns",
            ],
            **base,
            "stratification": stratification(assignments, members),
            "conversations": {
                name: sorted(cid for cid, s in assignments.items() if s == name)
                for name in SPLIT_NAMES
                if name in base["counts"]
            },
        }
        section["leakage"] = {
            **base["leakage"],
            "shared_turns": self.shared.report(assignments) if self.shared else None,
        }
        section["total"] = total
        return section


_KEY_SAFE = re.compile(r"[^A-Za-z0-9-]+")


@dataclass(slots=True)
class _OutFile:
    split: str  # train / validation / test, or "all" without a split
    stream: FileStream
    sink: SpoolSink
    spooled: SpooledFile
    key: str
    filename: str
    expected: int | None
    written: CompactIds = field(default_factory=CompactIds)
    sha256: str = ""

    def write(self, chunk: bytes) -> None:
        self.sink.write(chunk)  # spools it, and uploads every complete part

    def close(self) -> None:
        tail = self.stream.close()
        if tail:
            self.write(tail)
        header = self.stream.header()
        self.spooled.header = header
        if self.stream.needs_header:
            self.sink.close(prefix=header)
        else:
            self.sink.close()

    @property
    def size(self) -> int:
        return self.spooled.size + len(self.spooled.header)


class _Run:
    """The files of one export: data files streamed to S3 (and spooled for the bundle),
    then the manifest and the bundle. Any failure removes every object written."""

    def __init__(
        self,
        service: ExportService,
        record: ExportRecord,
        writer: FormatWriter,
        label: str,
        day: date,
    ) -> None:
        self.s3, self.bucket = service.s3, service.bucket
        self.record, self.writer, self.label, self.day = record, writer, label, day
        self.prefix = f"exports/{record.tenant_id}/{record.export_id}/"
        self.files: list[_OutFile] = []
        self.skipped: list[SkippedConversation] = []
        self.stored_keys: list[str] = []
        self.file_entries: list[dict[str, Any]] = []
        self.primary_filename: str | None = None
        self._open_sinks: list[SpoolSink] = []
        self._bundle: Bundle | None = None

    def _name(
        self, split: str | None, count: int | None, ext: str, suffix: str | None = None
    ) -> str:
        return export_file_name(
            self.label,
            self.record.format.value,
            self.day,
            extension=ext,
            split=split,
            count=count,
            suffix=suffix,
        )

    def _sink(
        self,
        key: str,
        content_type: str,
        filename: str,
        spool: SpooledFile,
        hold: bool = False,
    ) -> SpoolSink:
        sink = SpoolSink(self.s3, self.bucket, key, content_type, filename, spool, hold)
        self._open_sinks.append(sink)
        return sink

    def _open(self, split: str | None, count: int | None, options: ExportOptions) -> _OutFile:
        ext = self.writer.extension
        filename = self._name(split, count, ext)
        # A count known before writing (a split's) is part of the key; a single file's
        # count is only known once written, and the key is not rewritten for it (a copy
        # would store the file twice): its download name carries the count.
        key = self.prefix + filename
        # A split's conversations were checked against the format when they were read.
        report = ExportReport(format=self.writer.format)
        stream = FileStream(self.writer, options, report, validated=count is not None, label=split)
        spooled = SpooledFile(filename)
        sink = self._sink(
            key,
            self.writer.content_type,
            filename,
            spooled,
            hold=isinstance(self.writer, GenericWriter),
        )
        out = _OutFile(split or "all", stream, sink, spooled, key, filename, count)
        self.files.append(out)
        return out

    def write_files(
        self,
        counts: Mapping[str, int] | None,
        options: ExportOptions,
        items: Iterable[ExportItem],
        tally: TokenTally,
    ) -> None:
        """Route every conversation to its file (one pass over ``items``)."""
        if counts is None:
            outs = {"all": self._open(None, None, options)}
        else:
            outs = {n: self._open(n, counts[n], options) for n in SPLIT_NAMES if counts.get(n)}
        assignments = options.splits
        system = options.system_prompt
        for item in items:
            cid = item.conversation.conversation_id
            out = outs["all" if assignments is None else assignments[cid]]
            before = out.stream.records
            chunk = out.stream.add(item)
            if chunk:
                out.write(chunk)
            if out.stream.records != before:
                out.written.append(cid)
                tally.add(out.split, cid, system, item.turns)
        self._close(outs)

    def write_split_files(
        self, plan: _SplitPlan, options: ExportOptions, tally: TokenTally
    ) -> None:
        """Route every spooled record to its split's file, its label put in place."""
        counts = plan.counts
        outs = {n: self._open(n, counts[n], options) for n in SPLIT_NAMES if counts.get(n)}
        assignments = plan.assignments
        labelled = self.writer.labelled
        for cid, text, approx, aggregate, frozen in plan.entries():
            split = assignments[cid]
            out = outs[split]
            if text is not None:
                chunk = out.stream.add_rendered(labelled(text, split), aggregate)
            else:
                before = out.stream.records
                chunk = out.stream.add(thaw(frozen)) if frozen is not None else None
                if out.stream.records == before:  # failed its final check: reported
                    if chunk:
                        out.write(chunk)
                    continue
            if chunk:
                out.write(chunk)
            out.written.append(cid)
            tally.add_count(split, cid, approx)
        self._close(outs)

    def _close(self, outs: Mapping[str, _OutFile]) -> None:
        # One after the other: each close reads its last part back from its spool, and
        # closing together would hold every file's last part in memory at once.
        for out in outs.values():
            out.close()  # a failure leaves this sink and later ones open: discard() aborts
            self._open_sinks.remove(out.sink)
            self.stored_keys.append(out.key)  # stored: discard() deletes it
            self.skipped += out.stream.report.skipped
        for out in self.files:
            if out.expected is None:
                out.filename = self._name(None, out.stream.records, self.writer.extension)
            elif out.stream.records != out.expected:
                self._rename(out, self._name(out.split, out.stream.records, self.writer.extension))

    def _rename(self, out: _OutFile, filename: str) -> None:
        """A split file whose count came out lower than assigned (a record failed its
        final check): stored under the name that says what it holds."""
        key = self.prefix + filename
        self.s3.copy_object(
            Bucket=self.bucket,
            Key=key,
            CopySource={"Bucket": self.bucket, "Key": out.key},
            MetadataDirective="REPLACE",
            ContentType=self.writer.content_type,
            ContentDisposition=f'attachment; filename="{filename}"',
            ServerSideEncryption="AES256",
        )
        self.stored_keys.append(key)
        self.s3.delete_object(Bucket=self.bucket, Key=out.key)
        self.stored_keys.remove(out.key)
        out.key, out.filename = key, filename

    def skipped_records(self) -> list[dict[str, str]]:
        return [
            {"conversation_id": s.conversation_id, "reason": "; ".join(s.reasons)}
            for s in self.skipped
        ]

    def _put_spooled(self, filename: str, spooled: SpooledFile, content_type: str) -> str:
        spooled.spool.flush()
        spooled.spool.seek(0)
        key = self.prefix + filename
        self.s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=spooled.spool,
            ContentLength=spooled.size,
            ContentType=content_type,
            ContentDisposition=f'attachment; filename="{filename}"',
            ServerSideEncryption="AES256",
        )
        self.stored_keys.append(key)
        return key

    def finish(self, manifest: dict[str, Any], tally: TokenTally, role_arn: str | None) -> None:
        """Hash every data file into the bundle, then store the manifest and the bundle."""
        record, fmt = self.record, self.record.format
        split = record.split is not None
        total = sum(f.stream.records for f in self.files)
        bundle = self._bundle = Bundle()
        data_names: dict[str, str] = {}
        for out in self.files:
            out.spooled.name = out.filename
            out.sha256 = bundle.add_file(out.spooled)
            data_names[out.split] = out.filename
            manifest["files"].append(
                {
                    "split": out.split if split else None,
                    "filename": out.filename,
                    "records": out.stream.records,
                    "bytes": out.size,
                    "sha256": out.sha256,
                }
            )
        max_tokens = manifest["tokens"]["all"]["max"]
        bedrock = None
        if fmt == ExportFormat.ANTHROPIC:
            by_split = {f.split: f for f in self.files}
            train = by_split.get("train") or by_split.get("all") or self.files[0]
            validation = by_split.get("validation")
            bedrock = bedrock_job(
                job_name=_KEY_SAFE.sub("-", f"{self.label[:28]}-{record.export_id}")[:63],
                custom_model_name=_KEY_SAFE.sub("-", f"{self.label[:28]}-{record.export_id}-model")[
                    :63
                ],
                role_arn=role_arn or ROLE_PLACEHOLDER,
                base_model=BEDROCK_BASE_MODEL,
                training_uri=f"s3://{self.bucket}/{train.key}",
                validation_uri=f"s3://{self.bucket}/{validation.key}" if validation else None,
                output_uri=f"s3://{self.bucket}/fine-tunes/{record.tenant_id}/{record.export_id}/",
                hyperparameters=BEDROCK_DEFAULT_HYPERPARAMETERS,
            )
        configs = trainer_configs(
            fmt, self.label.replace("-", "_"), data_names, max_tokens, bedrock
        )
        manifest_name = self._name(None, total, "json", suffix="manifest")
        manifest["trainer_configs"] = sorted(configs)
        spooled_manifest = SpooledFile(manifest_name)
        write_manifest(
            manifest,
            ((cid, s if split else None, tokens) for cid, s, tokens in tally.records()),
            spooled_manifest,
        )
        bundle.add_file(spooled_manifest)
        # The manifest is stored while the rest of the bundle is built and uploaded.
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="manifest")
        manifest_put = pool.submit(
            self._put_spooled, manifest_name, spooled_manifest, "application/json"
        )
        pool.shutdown(wait=False)
        for name, text in configs.items():
            bundle.add_text(name, text)
        title = f"{self.label} {fmt.value} export {record.export_id} ({total} conversations)"
        bundle.add_text(
            "README.md",
            readme(fmt, title, data_names, manifest_name, configs, self.label.replace("-", "_")),
        )
        bundle_name = self._name(None, total, "zip")
        bundle_key = self.prefix + bundle_name
        zipped = bundle.finish()
        sink = self._sink(bundle_key, "application/zip", bundle_name, zipped)
        try:
            sink.close()
        finally:
            try:
                manifest_key = manifest_put.result()  # stored (and listed for cleanup) or raised
            finally:
                spooled_manifest.close()
        bundle_bytes = zipped.size
        self._open_sinks.remove(sink)
        self.stored_keys.append(bundle_key)
        self.file_entries = [
            {
                "split": out.split if split else None,
                "key": out.key,
                "filename": out.filename,
                "count": out.stream.records,
                "bytes": out.size,
                "sha256": out.sha256,
            }
            for out in self.files
        ]
        self.file_entries.append(
            {
                "split": "manifest",
                "key": manifest_key,
                "filename": manifest_name,
                "count": total,
                "bytes": spooled_manifest.size,
            }
        )
        self.file_entries.append(
            {
                "split": "bundle",
                "key": bundle_key,
                "filename": bundle_name,
                "count": total,
                "bytes": bundle_bytes,
            }
        )
        self.primary_filename = bundle_name if split else self.files[0].filename

    def discard(self) -> None:
        """After a failure: abort open uploads and delete every object already stored."""
        for sink in self._open_sinks:
            try:
                sink.abort()
            except Exception:  # keep the original error; S3 expires orphan uploads
                log.exception("could not abort the multipart upload of %s", sink.key)
        self._open_sinks.clear()
        self.delete_objects()

    def delete_objects(self) -> None:
        for key in self.stored_keys:
            try:
                self.s3.delete_object(Bucket=self.bucket, Key=key)
            except Exception:
                log.exception("could not delete %s", key)
        self.stored_keys.clear()

    def close(self) -> None:
        for out in self.files:
            out.spooled.close()
        if self._bundle is not None:
            self._bundle.close()
