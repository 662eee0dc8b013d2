"""Snapshots of the list index in S3 (``ListSnapshots``).

Two gzip'd JSON-lines objects per dataset under ``list-index/<tenant>/<dataset>/``: the
rows (a header line, then one conversation document per line) and the turn text (a
header, then ``[conversation_id, text]`` per line). Both are read as streams, a line at a
time, so loading one never holds the whole object in memory. The header names the
format, the conversation schema (a hash of the model's fields: a snapshot written by
another release is ignored), the tenant and dataset, the newest change it holds (where
the delta read starts) and when it was written. A snapshot written more than
``MAX_AGE_MS`` ago is ignored: the deltas after it could miss rows the trash has purged
since (a purge removes the tombstone a delta would have shown).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

from chalicelib.domain.models import Conversation
from chalicelib.domain.ports import ListSnapshot

log = logging.getLogger(__name__)

PREFIX = "list-index"
FORMAT = 1
MAX_AGE_MS = 24 * 3600 * 1000
SCHEMA = hashlib.sha256(",".join(sorted(Conversation.model_fields)).encode()).hexdigest()[:16]


def _header(
    tenant_id: str, dataset_id: str, synced_ms: int, kind: str, written_ms: int = 0
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "kind": kind,
        "schema": SCHEMA,
        "tenant_id": tenant_id,
        "dataset_id": dataset_id,
        "synced_ms": synced_ms,  # the newest change in it: the delta starts here
        "written_ms": written_ms,  # when it was written: its age
    }


class S3ListSnapshots:
    def __init__(self, s3: Any, bucket: str, clock: Any = time.time) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.clock = clock

    @staticmethod
    def key(tenant_id: str, dataset_id: str, kind: str) -> str:
        return f"{PREFIX}/{tenant_id}/{dataset_id}/{kind}.jsonl.gz"

    def _lines(
        self, tenant_id: str, dataset_id: str, kind: str
    ) -> tuple[int, Iterator[str]] | None:
        """The object's newest change and its lines after the header, or None when there
        is no usable one."""
        try:
            body = self.s3.get_object(
                Bucket=self.bucket, Key=self.key(tenant_id, dataset_id, kind)
            )["Body"]
        except self.s3.exceptions.NoSuchKey:
            return None
        stream = io.TextIOWrapper(gzip.GzipFile(fileobj=body), encoding="utf-8")
        header = json.loads(stream.readline() or "null")
        expected = _header(tenant_id, dataset_id, 0, kind)
        if not isinstance(header, dict) or any(
            header.get(k) != v for k, v in expected.items() if not k.endswith("_ms")
        ):
            log.info("list snapshot %s of %s/%s is of another release", kind, tenant_id, dataset_id)
            return None
        if self.clock() * 1000 - int(header.get("written_ms") or 0) > MAX_AGE_MS:
            return None
        return int(header["synced_ms"]), (line for line in stream if line.strip())

    def load(self, tenant_id: str, dataset_id: str) -> ListSnapshot | None:
        found = self._lines(tenant_id, dataset_id, "rows")
        if found is None:
            return None
        synced_ms, lines = found
        # pydantic parses each document in one pass (no json.loads, then validation)
        rows = (Conversation.model_validate_json(line) for line in lines)
        return ListSnapshot(synced_ms=synced_ms, rows=rows)

    def load_texts(self, tenant_id: str, dataset_id: str) -> Iterator[tuple[str, str]] | None:
        found = self._lines(tenant_id, dataset_id, "texts")
        if found is None:
            return None
        return ((str(cid), str(text)) for cid, text in map(json.loads, found[1]))

    def save(
        self,
        tenant_id: str,
        dataset_id: str,
        synced_ms: int,
        rows: Iterable[Conversation],
        texts: Iterable[tuple[str, str]],
    ) -> None:
        # Texts first: a rows object is only ever read with texts at least as new.
        documents: dict[str, Iterable[bytes]] = {
            "texts": (json.dumps(t, separators=(",", ":")).encode() for t in texts),
            "rows": (c.model_dump_json().encode() for c in rows),
        }
        for kind, lines in documents.items():
            buffer = io.BytesIO()
            with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=1) as out:
                header = _header(tenant_id, dataset_id, synced_ms, kind, int(self.clock() * 1000))
                out.write(json.dumps(header).encode() + b"\n")
                for line in lines:
                    out.write(line + b"\n")
            self.s3.put_object(
                Bucket=self.bucket,
                Key=self.key(tenant_id, dataset_id, kind),
                Body=buffer.getvalue(),
                ContentType="application/gzip",
                ServerSideEncryption="AES256",
            )
