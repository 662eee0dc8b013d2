"""S3ListSnapshots against moto's S3: what it writes reads back, and a snapshot of
another release, of another dataset or too old is not used."""

from __future__ import annotations

import gzip
import json
import uuid
from typing import Any

from chalicelib.domain.models import Conversation, Tier
from chalicelib.store import list_snapshots as ls


def snapshots(clock: Any = None) -> ls.S3ListSnapshots:
    from chalicelib.bootstrap import get_container

    c = get_container()
    return ls.S3ListSnapshots(c.s3, c.settings.export_bucket, **({"clock": clock} if clock else {}))


def docs(tenant: str, dataset: str, n: int) -> list[Conversation]:
    return [
        Conversation(
            tenant_id=tenant,
            dataset_id=dataset,
            conversation_id=f"conv_{i}",
            persona="P",
            emotion="E",
            topic="T",
            intent="I",
            tone="W",
            tier=Tier.TEMPLATE,
        )
        for i in range(n)
    ]


def test_a_snapshot_reads_back_as_written(api: Any) -> None:
    store, tenant, dataset = snapshots(), f"t-{uuid.uuid4().hex[:8]}", "ds_1"
    now_ms = int(store.clock() * 1000)
    store.save(
        tenant, dataset, now_ms, docs(tenant, dataset, 3), [("conv_0", "hello"), ("conv_1", "")]
    )
    loaded = store.load(tenant, dataset)
    assert loaded is not None and loaded.synced_ms == now_ms
    assert [c.conversation_id for c in loaded.rows] == ["conv_0", "conv_1", "conv_2"]
    texts = store.load_texts(tenant, dataset)
    assert texts is not None and dict(texts) == {"conv_0": "hello", "conv_1": ""}
    assert store.key(tenant, dataset, "rows").startswith(f"list-index/{tenant}/{dataset}/")
    assert store.load(tenant, "ds_other") is None


def test_a_snapshot_of_another_release_or_too_old_is_not_used(api: Any) -> None:
    tenant, dataset = f"t-{uuid.uuid4().hex[:8]}", "ds_1"
    now = [1_000_000.0]
    store = snapshots(clock=lambda: now[0])
    # old data is fine (the delta starts at its newest change) ...
    store.save(tenant, dataset, 5, docs(tenant, dataset, 1), [])
    assert store.load(tenant, dataset) is not None
    # ... an old snapshot is not
    now[0] += ls.MAX_AGE_MS / 1000 + 1
    assert store.load(tenant, dataset) is None and store.load_texts(tenant, dataset) is None
    now_ms = int(now[0] * 1000)
    header = {**ls._header(tenant, dataset, now_ms, "rows", now_ms), "schema": "another-release"}
    body = gzip.compress((json.dumps(header) + "\n").encode())
    store.s3.put_object(Bucket=store.bucket, Key=store.key(tenant, dataset, "rows"), Body=body)
    assert store.load(tenant, dataset) is None
