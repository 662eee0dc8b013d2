"""pynamodb records. The only module (with repositories.py) that imports pynamodb.

Key design: every hash key starts with the tenant id (``tenant_id`` itself, or
``tenant#<parent id>`` for child collections), so an IAM ``dynamodb:LeadingKeys``
condition and a glance at any key both show whose data it is.

Turns are stored as ONE item per conversation (``TurnsRecord.turns``), not one item per
turn: a conversation's turns are always written and read together, so one item makes
the write atomic with the conversation's status change (a single TransactWrite), a
retried generation overwrites instead of doubling turns, and a read is one GetItem. A
conversation of 16 long turns is ~40 KB, far below DynamoDB's 400 KB item limit.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.connection import Connection
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.library_pins import require_version
from chalicelib.store.wire import use_wire_parser

# configure_records resets and sets pynamodb's private ``Model._connection`` and
# ``Connection._client``: written against exactly this release.
PINNED_PYNAMODB = "6.1.0"


def tenant_key(tenant_id: str, *parts: str) -> str:
    return "#".join((tenant_id, *parts))


class BaseRecord(Model):
    """Common base; physical table names are set at runtime by ``configure_records``."""


# --------------------------------------------------------------------------- datasets


class DatasetRecord(BaseRecord):
    class Meta:
        table_name = "unset"
        logical_name = "datasets"

    tenant_id = UnicodeAttribute(hash_key=True)
    dataset_id = UnicodeAttribute(range_key=True)
    name = UnicodeAttribute()
    description = UnicodeAttribute(default="")
    business_name = UnicodeAttribute(null=True)
    target_count = NumberAttribute(default=90)
    tier_distribution = JSONAttribute(null=True)
    budget_usd = NumberAttribute(null=True)
    model = UnicodeAttribute(null=True)
    taxonomy = JSONAttribute(null=True)
    quality_rules = JSONAttribute(null=True)
    judge_mode = UnicodeAttribute(null=True)
    require_reject_note = BooleanAttribute(null=True)
    chunk_count = NumberAttribute(default=0)
    spent_usd = NumberAttribute(default=0)
    plan_seed = NumberAttribute(default=7)
    created_by = UnicodeAttribute(default="")
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    version = NumberAttribute(default=1)
    # Bumped after every conversation write: list caches compare it to know they are stale.
    conv_seq = NumberAttribute(default=0)
    archived_at = UTCDateTimeAttribute(null=True)  # read-only while set
    archived_by = UnicodeAttribute(null=True)
    # Being deleted: hidden from every read while its items are purged.
    deleted_at = UTCDateTimeAttribute(null=True)


class ChunkRecord(BaseRecord):
    class Meta:
        table_name = "unset"
        logical_name = "chunks"

    dataset_key = UnicodeAttribute(hash_key=True)  # tenant#dataset
    chunk_id = UnicodeAttribute(range_key=True)
    document_id = UnicodeAttribute()
    document_title = UnicodeAttribute(default="")
    text = UnicodeAttribute()
    persona = UnicodeAttribute(null=True)
    emotion = UnicodeAttribute(null=True)
    topic = UnicodeAttribute(null=True)
    intent = UnicodeAttribute(null=True)
    tone = UnicodeAttribute(null=True)


# --------------------------------------------------------------------------- conversations


class ConversationsByDataset(GlobalSecondaryIndex["ConversationRecord"]):
    """Changed-since query for the list index: (tenant#dataset, updated_ms)."""

    class Meta:
        index_name = "by_dataset_updated"
        projection = AllProjection()

    dataset_key = UnicodeAttribute(hash_key=True)
    updated_ms = NumberAttribute(range_key=True)


class ConversationsInTrash(GlobalSecondaryIndex["ConversationRecord"]):
    """The trash of a dataset, newest first: sparse (only trashed items carry the key)."""

    class Meta:
        index_name = "in_trash"
        projection = AllProjection()

    trash_key = UnicodeAttribute(hash_key=True)  # tenant#dataset
    trashed_ms = NumberAttribute(range_key=True)


class ConversationRecord(BaseRecord):
    class Meta:
        table_name = "unset"
        logical_name = "conversations"

    tenant_id = UnicodeAttribute(hash_key=True)
    conversation_id = UnicodeAttribute(range_key=True)
    dataset_id = UnicodeAttribute()
    dataset_key = UnicodeAttribute()
    updated_ms = NumberAttribute()
    by_dataset = ConversationsByDataset()

    persona = UnicodeAttribute()
    emotion = UnicodeAttribute()
    topic = UnicodeAttribute()
    intent = UnicodeAttribute()
    tone = UnicodeAttribute()
    tier = UnicodeAttribute()
    arc = UnicodeAttribute(null=True)
    scenario = UnicodeAttribute(null=True)
    edge_case_type = UnicodeAttribute(null=True)
    chunk_id = UnicodeAttribute(null=True)
    document_id = UnicodeAttribute(null=True)
    title = UnicodeAttribute(null=True)
    status = UnicodeAttribute()
    quality_score = NumberAttribute(null=True)
    quality = JSONAttribute(null=True)
    # The report's few fields the list index keeps (it reads this, never ``quality``).
    quality_summary = JSONAttribute(null=True)
    turn_count = NumberAttribute(default=0)
    estimated_cost_usd = NumberAttribute(null=True)
    actual_cost_usd = NumberAttribute(null=True)
    generation_duration_ms = NumberAttribute(null=True)
    input_tokens = NumberAttribute(default=0)
    output_tokens = NumberAttribute(default=0)
    model = UnicodeAttribute(null=True)
    template_id = UnicodeAttribute(null=True)
    template_version = NumberAttribute(null=True)
    parse_path = UnicodeAttribute(null=True)
    job_id = UnicodeAttribute(null=True)
    generation_attempts = NumberAttribute(default=0)
    claim_token = UnicodeAttribute(null=True)
    approved_by = UnicodeAttribute(null=True)
    approved_at = UTCDateTimeAttribute(null=True)
    reviewed_by = UnicodeAttribute(null=True)
    reviewed_at = UTCDateTimeAttribute(null=True)
    reviewer_notes = UnicodeAttribute(null=True)
    error_message = UnicodeAttribute(null=True)
    generated_at = UTCDateTimeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    version = NumberAttribute(default=1)
    # Lower-cased turn text kept beside the summary so the list index can search turn
    # content without reading the turns table.
    search_text = UnicodeAttribute(null=True)
    deleted = BooleanAttribute(default=False)
    # Stored generations so far; the earlier ones are in conversation_versions.
    generation_number = NumberAttribute(null=True)
    # In the trash (deleted, restorable until purge_at; DynamoDB's TTL then removes the
    # item, its turns and versions, which carry the same purge_at).
    trash_key = UnicodeAttribute(null=True)
    trashed_ms = NumberAttribute(null=True)
    in_trash = ConversationsInTrash()
    trashed_at = UTCDateTimeAttribute(null=True)
    trashed_by = UnicodeAttribute(null=True)
    purge_at = TTLAttribute(null=True)


class TurnsRecord(BaseRecord):
    class Meta:
        table_name = "unset"
        logical_name = "turns"

    tenant_id = UnicodeAttribute(hash_key=True)
    conversation_id = UnicodeAttribute(range_key=True)
    turns = JSONAttribute()  # [{"turn_number", "role", "content"}]
    # Reviewers' marks per turn number ({"3": {"bad", "note", "original_content", ...}});
    # an edited turn's text is in ``turns``, so every reader of the turns gets the edit.
    # A regeneration writes a new item without it: the marks were about the old text.
    feedback = JSONAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    purge_at = TTLAttribute(null=True)  # set while its conversation is in the trash


class ConversationVersionRecord(BaseRecord):
    """An earlier generation of a conversation, kept when it was regenerated: its turns
    and what produced and scored them. One item per version (each one generation's
    turns, ~40 KB at most, like a turns item), under the tenant's conversation key."""

    class Meta:
        table_name = "unset"
        logical_name = "conversation_versions"

    conversation_key = UnicodeAttribute(hash_key=True)  # tenant#conversation
    number = NumberAttribute(range_key=True)  # 1 = the first generation
    tenant_id = UnicodeAttribute()
    doc = JSONAttribute()  # model, template, quality, cost, tokens, generated_at, title...
    turns = JSONAttribute()
    superseded_at = UTCDateTimeAttribute()
    purge_at = TTLAttribute(null=True)  # set while its conversation is in the trash


class GenerationLogRecord(BaseRecord):
    class Meta:
        table_name = "unset"
        logical_name = "generation_logs"

    conversation_key = UnicodeAttribute(hash_key=True)  # tenant#conversation
    log_id = UnicodeAttribute(range_key=True)  # time-ordered: <iso time>#<id>
    tenant_id = UnicodeAttribute()
    doc = JSONAttribute()


# --------------------------------------------------------------------------- jobs


class JobsByDataset(GlobalSecondaryIndex["JobRecord"]):
    class Meta:
        index_name = "by_dataset_created"
        projection = KeysOnlyProjection()

    dataset_key = UnicodeAttribute(hash_key=True)
    created_ms = NumberAttribute(range_key=True)


class JobRecord(BaseRecord):
    class Meta:
        table_name = "unset"
        logical_name = "jobs"

    tenant_id = UnicodeAttribute(hash_key=True)
    job_id = UnicodeAttribute(range_key=True)
    dataset_key = UnicodeAttribute()
    created_ms = NumberAttribute()
    by_dataset = JobsByDataset()
    dataset_id = UnicodeAttribute()
    kind = UnicodeAttribute()
    mode = UnicodeAttribute(default="standard")
    status = UnicodeAttribute()
    conversation_ids = ListAttribute(of=UnicodeAttribute, default=list)
    total = NumberAttribute(default=0)
    completed = NumberAttribute(default=0)
    failed = NumberAttribute(default=0)
    skipped = NumberAttribute(default=0)
    current = JSONAttribute(null=True)
    cost_usd = NumberAttribute(default=0)
    estimated_cost_usd = NumberAttribute(default=0)
    estimated_seconds = NumberAttribute(default=0)
    budget_usd = NumberAttribute(null=True)
    warnings = JSONAttribute(null=True)
    warned_thresholds = ListAttribute(of=NumberAttribute, default=list)
    max_concurrency = NumberAttribute(null=True)  # the request's cap; None: adaptive
    max_attempts = NumberAttribute(default=3)
    concurrency = JSONAttribute(null=True)  # the in-flight plan of the newest execution
    execution_arns = ListAttribute(of=UnicodeAttribute, default=list)
    # Set by a resume from its status change until its execution is listed: a second
    # resume in that window would start a second execution beside the first.
    resume_started_at = UTCDateTimeAttribute(null=True)
    batch_id = UnicodeAttribute(null=True)
    # Economy mode: the Message Batch of judge calls that follows the generation batch
    # ({"id", "at"}); "at" dates its billed calls, so a retried poll logs each once.
    judge_batch = JSONAttribute(null=True)
    batch_execution = UnicodeAttribute(null=True)  # the execution that submitted batch_id
    estimate = JSONAttribute(null=True)  # what the start estimate was built from, its range
    pause_reason = UnicodeAttribute(null=True)
    error_message = UnicodeAttribute(null=True)
    created_by = UnicodeAttribute(default="")
    created_at = UTCDateTimeAttribute()
    started_at = UTCDateTimeAttribute(null=True)
    finished_at = UTCDateTimeAttribute(null=True)
    updated_at = UTCDateTimeAttribute()


class JobItemRecord(BaseRecord):
    """One per (job, conversation) once its outcome is known: the exactly-once counter."""

    class Meta:
        table_name = "unset"
        logical_name = "job_items"

    job_key = UnicodeAttribute(hash_key=True)  # tenant#job
    conversation_id = UnicodeAttribute(range_key=True)
    outcome = UnicodeAttribute()  # completed | failed | skipped (| ids: see below)
    cost_usd = NumberAttribute(default=0)
    error_message = UnicodeAttribute(null=True)
    at = UTCDateTimeAttribute()
    # Rows "~ids#<n>" (after every conversation id) hold the job's conversation ids, so
    # the job item, updated once or twice per conversation, stays a few hundred bytes.
    ids = ListAttribute(of=UnicodeAttribute, null=True)


class RateLimitRecord(BaseRecord):
    """GCRA state shared by every Lambda: the theoretical arrival time per limiter."""

    class Meta:
        table_name = "unset"
        logical_name = "rate_limits"

    limiter_key = UnicodeAttribute(hash_key=True)  # tenant#model#kind
    tat = NumberAttribute(default=0)  # epoch milliseconds (int)
    blocked_until = NumberAttribute(default=0)  # epoch milliseconds (int)
    # Back-off of a provider key (tenant#model#backoff): domain/concurrency.py
    rate_share = NumberAttribute(null=True)
    epoch_start = NumberAttribute(null=True)  # epoch milliseconds (int)
    calls = NumberAttribute(null=True)
    refusals = NumberAttribute(null=True)
    consecutive_refusals = NumberAttribute(null=True)
    open_until = NumberAttribute(null=True)  # epoch milliseconds (int)
    trips = NumberAttribute(null=True)
    # Calls of one job (tenant#job#<id>#flight): in flight now, and what they took
    in_flight = NumberAttribute(null=True)
    answered = NumberAttribute(null=True)
    latency_ms = NumberAttribute(null=True)  # sum over the answered calls
    output_tokens = NumberAttribute(null=True)  # sum over the answered calls


# --------------------------------------------------------------------------- templates


class TemplateRecord(BaseRecord):
    class Meta:
        table_name = "unset"
        logical_name = "templates"

    tenant_id = UnicodeAttribute(hash_key=True)
    # A template's id, or ``name#<name key>`` for the row that reserves a name for one
    # template (``owner_id``): created and moved by conditional writes, so two templates
    # of one tenant can never hold the same name, even when created at the same moment.
    template_id = UnicodeAttribute(range_key=True)
    doc = JSONAttribute()
    version = NumberAttribute(default=1)
    owner_id = UnicodeAttribute(null=True)


class TemplateVersionRecord(BaseRecord):
    class Meta:
        table_name = "unset"
        logical_name = "template_versions"

    template_key = UnicodeAttribute(hash_key=True)  # tenant#template
    version = NumberAttribute(range_key=True)
    doc = JSONAttribute()


# --------------------------------------------------------------------------- exports, audit, notices


class ExportRecordRow(BaseRecord):
    class Meta:
        table_name = "unset"
        logical_name = "exports"

    tenant_id = UnicodeAttribute(hash_key=True)
    export_id = UnicodeAttribute(range_key=True)
    created_ms = NumberAttribute()
    # Copies of doc's status and claim_token, for conditional writes: one run claims a
    # pending export, and only that run (or a timeout, on read) may finish it.
    status = UnicodeAttribute(null=True)
    claim_token = UnicodeAttribute(null=True)
    doc = JSONAttribute()


class AuditByEntity(GlobalSecondaryIndex["AuditRecordRow"]):
    class Meta:
        index_name = "by_entity"
        projection = AllProjection()

    entity_key = UnicodeAttribute(hash_key=True)  # tenant#entity_id
    sort_key = UnicodeAttribute(range_key=True)


class AuditRecordRow(BaseRecord):
    """Append-only: written with attribute_not_exists, never updated or deleted by the app."""

    class Meta:
        table_name = "unset"
        logical_name = "audit"

    tenant_id = UnicodeAttribute(hash_key=True)
    sort_key = UnicodeAttribute(range_key=True)  # <iso time>#<audit id>
    entity_key = UnicodeAttribute()
    by_entity = AuditByEntity()
    action = UnicodeAttribute()
    actor = UnicodeAttribute()
    doc = JSONAttribute()


class NotificationRecord(BaseRecord):
    class Meta:
        table_name = "unset"
        logical_name = "notifications"

    tenant_id = UnicodeAttribute(hash_key=True)
    sort_key = UnicodeAttribute(range_key=True)  # msg#<iso>#<id> | sub#<email>
    doc = JSONAttribute()


class JudgementRecord(BaseRecord):
    """A judge verdict, keyed by the hash of everything the judge saw (a cache)."""

    class Meta:
        table_name = "unset"
        logical_name = "judgements"

    tenant_id = UnicodeAttribute(hash_key=True)
    content_hash = UnicodeAttribute(range_key=True)
    doc = JSONAttribute()
    created_at = UTCDateTimeAttribute()


class FineTuneRecordRow(BaseRecord):
    """A fine-tune (model customization job) started from an export."""

    class Meta:
        table_name = "unset"
        logical_name = "fine_tunes"

    tenant_id = UnicodeAttribute(hash_key=True)
    fine_tune_id = UnicodeAttribute(range_key=True)
    created_ms = NumberAttribute()
    doc = JSONAttribute()


ALL_RECORDS: tuple[type[BaseRecord], ...] = (
    DatasetRecord,
    ChunkRecord,
    ConversationRecord,
    TurnsRecord,
    ConversationVersionRecord,
    GenerationLogRecord,
    JobRecord,
    JobItemRecord,
    RateLimitRecord,
    TemplateRecord,
    TemplateVersionRecord,
    ExportRecordRow,
    AuditRecordRow,
    JudgementRecord,
    NotificationRecord,
    FineTuneRecordRow,
)


# One client serves every table and thread (a local Lambda worker runs 64 calls at
# once; an export reads with 5 threads): with pynamodb's default pool of 10, calls
# beyond it open a fresh connection each time.
MAX_POOL_CONNECTIONS = 64


def pool_connections() -> int:
    """A connection for every call the process may run at once: a local Lambda worker
    serves up to GENERATION_MAX_IN_FLIGHT generation calls (a Lambda container one, so
    the default suffices there). Past the pool, each call opened and dropped a TCP
    connection of its own (most of the local stack's time at 200 in flight)."""
    try:
        in_flight = int(os.environ.get("GENERATION_MAX_IN_FLIGHT") or 0)
    except ValueError:
        in_flight = 0
    return max(MAX_POOL_CONNECTIONS, in_flight + 32)


_shared_connections: dict[tuple[str, str | None], Connection] = {}
_shared_lock = threading.Lock()


def shared_connection() -> Connection:
    """The pynamodb Connection (one botocore client) of the configured endpoint, shared
    by every record class, transactions and the export reads. pynamodb would build a
    client per record class, and building one loads botocore's DynamoDB service model
    (~0.1 s of CPU each: most of a cold start's DynamoDB cost). botocore clients are
    thread-safe once built. Its reads are parsed by ``store.wire`` (JSON as is)."""
    meta: Any = ConversationRecord.Meta
    key = (meta.region, meta.host)
    with _shared_lock:
        conn = _shared_connections.get(key)
        if conn is None:
            conn = Connection(
                region=meta.region, host=meta.host, max_pool_connections=pool_connections()
            )
            # The client is built now, in this thread, from the session that knows
            # the parser (pynamodb keeps a session per thread).
            use_wire_parser(conn.session)
            assert conn.client is not None
            _shared_connections[key] = conn
        return conn


def configure_records(
    table_name: Any, region: str, host: str | None
) -> None:  # table_name: Callable[[str], str]
    """Point every record class at its physical table and endpoint (called by bootstrap),
    all through the one shared botocore client."""
    require_version("pynamodb", PINNED_PYNAMODB, "chalicelib/store/records.py")
    for record in ALL_RECORDS:
        record.Meta.table_name = table_name(record.Meta.logical_name)  # type: ignore[attr-defined]
        record.Meta.region = region
        record.Meta.host = host
        record._connection = None
    client = shared_connection().client
    for record in ALL_RECORDS:
        # pynamodb keeps the client on the record's Connection and reuses it while it
        # has credentials; handing it the shared one skips building another.
        record._get_connection().connection._client = client
