"""The items of a Distributed Map execution, in S3 (its ItemReader reads them there).

One JSON array per execution under ``jobs/<tenant>/<job>/<execution>/`` in the export
bucket (encrypted like every object there; a lifecycle rule expires the prefix). The
Map Run's results are written by Step Functions under ``jobs/map-runs/<map run id>/``
(the ASL's ResultWriter)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

JOB_PREFIX = "jobs"


class S3WorkItems:
    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    @staticmethod
    def prefix(tenant_id: str, job_id: str, execution: str) -> str:
        return f"{JOB_PREFIX}/{tenant_id}/{job_id}/{execution}"

    def put_items(
        self, tenant_id: str, job_id: str, execution: str, items: Sequence[dict[str, str]]
    ) -> tuple[str, str]:
        key = f"{self.prefix(tenant_id, job_id, execution)}/items.json"
        self.s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=json.dumps(list(items), separators=(",", ":")).encode(),
            ContentType="application/json",
            ServerSideEncryption="AES256",
        )
        return self.bucket, key
