"""Export: approved conversations -> a validated training file in S3 -> presigned download.

The file is streamed: conversations are read page by page from the dataset index
(GSI), their turns fetched per page, written by the pure format writer and uploaded
with S3 multipart, so memory stays flat in dataset size. Requests with more than
``INLINE_LIMIT`` conversations run off the request path (an async Lambda invoke).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from chalicelib.domain.errors import NotFoundError, ValidationError
from chalicelib.domain.models import (
    Conversation,
    ConversationStatus,
    ConversationWithTurns,
    ExportFormat,
    ExportRecord,
    ExportStatus,
    utcnow,
)
from chalicelib.export.filenames import export_filename
from chalicelib.export.formats import ExportOptions, get_writer, write_validated
from chalicelib.export.splits import assign_splits, split_manifest, validate_ratios
from chalicelib.generation.service import system_prompt_for
from chalicelib.review.audit import AuditLog
from chalicelib.store.repositories import (
    DynamoConversationRepository,
    DynamoDatasetRepository,
    DynamoExportRepository,
)

log = logging.getLogger(__name__)

INLINE_LIMIT = 300
PART_SIZE = 8 * 1024 * 1024  # S3 multipart parts must be >= 5 MiB except the last
PAGE = 100
FILTER_KEYS = ("persona", "emotion", "topic", "intent", "tone", "tier")


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


class S3MultipartSink:
    """Buffers bytes into >= 8 MiB parts; aborts the upload on any failure."""

    def __init__(self, s3: Any, bucket: str, key: str, content_type: str, filename: str) -> None:
        self.s3, self.bucket, self.key = s3, bucket, key
        self.upload_id = s3.create_multipart_upload(
            Bucket=bucket,
            Key=key,
            ContentType=content_type,
            ContentDisposition=f'attachment; filename="{filename}"',
            ServerSideEncryption="AES256",
        )["UploadId"]
        self.parts: list[dict[str, Any]] = []
        self.buffer = io.BytesIO()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.buffer.write(data)
        self.size += len(data)
        if self.buffer.tell() >= PART_SIZE:
            self._flush()

    def _flush(self) -> None:
        body = self.buffer.getvalue()
        if not body and self.parts:
            return
        n = len(self.parts) + 1
        etag = self.s3.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=n, Body=body
        )["ETag"]
        self.parts.append({"PartNumber": n, "ETag": etag})
        self.buffer = io.BytesIO()

    def close(self) -> None:
        self._flush()
        self.s3.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": self.parts},
        )

    def abort(self) -> None:
        self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)


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
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.presign_seconds = min(presign_seconds, 900)
        self.datasets = datasets
        self.conversations = conversations
        self.exports = exports
        self.audit = audit
        self.run_async = run_async

    # ------------------------------------------------------------------ sources
    def _approved(
        self, tenant_id: str, dataset_ids: list[str], filters: dict[str, Any]
    ) -> Iterator[Conversation]:
        for dataset_id in dataset_ids:
            for row in self.conversations.changed_since(tenant_id, dataset_id, -1):
                if not row.deleted and _matches(row.conversation, filters):
                    yield row.conversation

    def _with_turns(
        self, tenant_id: str, conversations: Iterable[Conversation]
    ) -> Iterator[ConversationWithTurns]:
        page: list[Conversation] = []

        def flush() -> Iterator[ConversationWithTurns]:
            turns = self.conversations.get_turns_many(tenant_id, [c.conversation_id for c in page])
            for c in page:
                yield ConversationWithTurns(conversation=c, turns=turns.get(c.conversation_id, []))

        for c in conversations:
            page.append(c)
            if len(page) >= PAGE:
                yield from flush()
                page = []
        if page:
            yield from flush()

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
        dataset_ids = self._dataset_ids(tenant_id, filters)
        approved = []
        for c in self._approved(tenant_id, dataset_ids, filters):
            approved.append(c)
            if len(approved) >= limit:
                break
        writer = get_writer(fmt)
        options = ExportOptions(system_prompt=self._system_prompt(tenant_id, dataset_ids))
        items = list(self._with_turns(tenant_id, approved))
        stream, report = write_validated(fmt, lambda: items, options)
        text = b"".join(stream).decode()
        if fmt in (ExportFormat.GENERIC, ExportFormat.CSV):
            records: list[Any] = [text[:20000]]
        else:
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        return {
            "format": fmt.value,
            "extension": writer.extension,
            "content_type": writer.content_type,
            "records": records,
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
        if split is not None:
            split = validate_ratios(split)
        dataset_ids = self._dataset_ids(tenant_id, filters)
        record = ExportRecord(
            tenant_id=tenant_id,
            format=fmt,
            filters={**filters, **({"options": options} if options else {})},
            split=split,
            created_by=actor,
        )
        self.exports.save(record)
        count = sum(1 for _ in self._approved(tenant_id, dataset_ids, filters))
        if count == 0:
            record.status = ExportStatus.FAILED
            record.error_message = (
                "no approved conversations match: approve some first, or widen the filters"
            )
            record.finished_at = utcnow()
            self.exports.save(record)
            raise ValidationError(record.error_message, {"export_id": record.export_id})
        if count > INLINE_LIMIT and self.run_async is not None:
            self.run_async(tenant_id, record.export_id)
            return record
        return self.run(tenant_id, record.export_id)

    def run(self, tenant_id: str, export_id: str) -> ExportRecord:
        record = self.exports.get(tenant_id, export_id)
        if record.status != ExportStatus.PENDING:
            return record
        try:
            record = self._write(record)
        except Exception as e:
            log.exception("export %s failed", export_id)
            record.status = ExportStatus.FAILED
            record.error_message = str(e)[:1000]
            record.finished_at = utcnow()
            self.exports.save(record)
            if isinstance(e, ValidationError | NotFoundError):
                raise
            return record
        self.audit.record(
            tenant_id,
            record.created_by,
            "export.create",
            "export",
            export_id,
            after={
                "format": record.format.value,
                "conversation_count": record.conversation_count,
                "filename": record.filename,
                "filters": record.filters,
                "split": record.split,
            },
        )
        return record

    def _write(self, record: ExportRecord) -> ExportRecord:
        tenant_id = record.tenant_id
        filters = {k: v for k, v in record.filters.items() if k != "options"}
        options_in = record.filters.get("options") or {}
        dataset_ids = self._dataset_ids(tenant_id, filters)
        writer = get_writer(record.format)
        date = datetime.now(UTC).date()
        assignments: dict[str, str] | None = None
        manifest: dict[str, Any] | None = None
        if record.split:
            conversations = list(self._approved(tenant_id, dataset_ids, filters))
            assignments = assign_splits(conversations, record.split, seed=0)
            manifest = split_manifest(assignments, conversations, record.split)
        options = ExportOptions(
            system_prompt=self._system_prompt(tenant_id, dataset_ids),
            assistant_weights=bool(options_in.get("assistant_weights")),
            splits=assignments,
        )

        def source() -> Iterable[ConversationWithTurns]:
            return self._with_turns(tenant_id, self._approved(tenant_id, dataset_ids, filters))

        stream, report = write_validated(record.format, source, options)
        provisional = f"exports/{tenant_id}/{record.export_id}/export.{writer.extension}"
        sink = S3MultipartSink(self.s3, self.bucket, provisional, writer.content_type, "export")
        try:
            for chunk in stream:
                sink.write(chunk)
            sink.close()
        except Exception:
            sink.abort()
            raise
        count = report.written
        filename = export_filename(date, "approved", count=count, extension=writer.extension)
        key = f"exports/{tenant_id}/{record.export_id}/{filename}"
        # Copy to the descriptive key with its final Content-Disposition (count known now).
        self.s3.copy_object(
            Bucket=self.bucket,
            Key=key,
            CopySource={"Bucket": self.bucket, "Key": provisional},
            ContentType=writer.content_type,
            ContentDisposition=f'attachment; filename="{filename}"',
            MetadataDirective="REPLACE",
            ServerSideEncryption="AES256",
        )
        self.s3.delete_object(Bucket=self.bucket, Key=provisional)
        files = [
            {
                "split": None,
                "key": key,
                "filename": filename,
                "count": count,
                "bytes": report.bytes_written,
            }
        ]
        if manifest is not None:
            manifest_name = filename.rsplit(".", 1)[0] + "-manifest.json"
            manifest_key = f"exports/{tenant_id}/{record.export_id}/{manifest_name}"
            self.s3.put_object(
                Bucket=self.bucket,
                Key=manifest_key,
                Body=json.dumps(manifest, indent=2).encode(),
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
        self.exports.save(record)
        return record

    # ------------------------------------------------------------------ downloads
    def get_with_url(self, tenant_id: str, export_id: str) -> dict[str, Any]:
        record = self.exports.get(tenant_id, export_id)
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
        return self.exports.list_all(tenant_id)
