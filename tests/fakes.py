"""In-memory implementations of the domain's ports (chalicelib/domain/ports.py), for fast
service tests without moto. Each keeps the contract its DynamoDB adapter states in
chalicelib/store/repositories.py: version-conditioned writes raise StaleVersionError,
a missing or deleting item is a NotFoundError, every conversation write bumps the
dataset's change counter (the list read model runs on these unchanged). ScriptedLLM
stands in for the Anthropic adapter (chalicelib/llm/client.py), InMemoryRateLimitStore
for DynamoRateLimitStore."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.errors import ConflictError, NotFoundError, StaleVersionError
from chalicelib.domain.filters import EXPORT_FILTERS, in_quality_range, matches_filters
from chalicelib.domain.models import (
    ACTIVE_JOB_STATUSES,
    GENERATABLE_STATUSES,
    REVIEWABLE_STATUSES,
    TRASH_RETENTION_DAYS,
    AuditRecord,
    BudgetWarning,
    Chunk,
    Conversation,
    ConversationStatus,
    ConversationVersion,
    ConversationWithTurns,
    Dataset,
    ExportRecord,
    ExportStatus,
    GenerationLog,
    Job,
    JobCurrent,
    JobStatus,
    NotificationMessage,
    PromptTemplate,
    StoredTurn,
    Turn,
    TurnFeedback,
    utcnow,
)
from chalicelib.domain.ports import (
    ClaimOutcome,
    ConversationRow,
    JobItemWrite,
    ListSnapshot,
    ReviewFailure,
    ReviewWrite,
    TurnsItem,
)
from chalicelib.llm.client import BatchStatus, LLMRequest, LLMResponse

_clock = itertools.count(int(time.time() * 1000))


def _ms() -> int:
    return next(_clock)  # strictly increasing, as the list's deltas need


class InMemoryDatasets:
    """DatasetStore and ConversationSeqReader."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Dataset] = {}
        self.deleting: set[tuple[str, str]] = set()
        self.seq: dict[tuple[str, str], int] = {}
        self.chunks: dict[tuple[str, str], list[Chunk]] = {}

    def _current(self, tenant_id: str, dataset_id: str, include_deleting: bool = False) -> Dataset:
        key = (tenant_id, dataset_id)
        if key not in self.items or (key in self.deleting and not include_deleting):
            raise NotFoundError("dataset", dataset_id)
        return self.items[key]

    def _check(self, tenant_id: str, dataset_id: str, expected_version: int) -> Dataset:
        current = self._current(tenant_id, dataset_id)
        if current.version != expected_version:
            raise StaleVersionError("the dataset was changed by someone else")
        return current

    def create(self, dataset: Dataset) -> Dataset:
        key = (dataset.tenant_id, dataset.dataset_id)
        if key in self.items:
            raise ConflictError(f"dataset '{dataset.dataset_id}' already exists")
        self.items[key] = dataset
        return dataset

    def get(self, tenant_id: str, dataset_id: str, include_deleting: bool = False) -> Dataset:
        return self._current(tenant_id, dataset_id, include_deleting)

    def list_all(self, tenant_id: str) -> list[Dataset]:
        return [
            d for (t, i), d in self.items.items() if t == tenant_id and (t, i) not in self.deleting
        ]

    def save(self, dataset: Dataset, expected_version: int) -> Dataset:
        if (dataset.tenant_id, dataset.dataset_id) not in self.items:
            raise NotFoundError("dataset", dataset.dataset_id)
        current = self.items[(dataset.tenant_id, dataset.dataset_id)]
        if current.version != expected_version:
            raise StaleVersionError(
                "the dataset was changed by someone else",
                {"current": current.model_dump(mode="json")},
            )
        saved = dataset.model_copy(update={"version": expected_version + 1, "updated_at": utcnow()})
        self.items[(dataset.tenant_id, dataset.dataset_id)] = saved
        return saved

    def set_archived(
        self, tenant_id: str, dataset_id: str, actor: str | None, expected_version: int
    ) -> Dataset:
        current = self._check(tenant_id, dataset_id, expected_version)
        now = utcnow()
        saved = current.model_copy(
            update={
                "version": current.version + 1,
                "updated_at": now,
                "archived_at": now if actor else None,
                "archived_by": actor,
            }
        )
        self.items[(tenant_id, dataset_id)] = saved
        return saved

    def mark_deleting(self, tenant_id: str, dataset_id: str, expected_version: int) -> None:
        self._check(tenant_id, dataset_id, expected_version)
        self.deleting.add((tenant_id, dataset_id))

    def get_deleting(self, tenant_id: str, dataset_id: str) -> bool:
        if (tenant_id, dataset_id) not in self.items:
            raise NotFoundError("dataset", dataset_id)
        return (tenant_id, dataset_id) in self.deleting

    def unmark_deleting(self, tenant_id: str, dataset_id: str) -> None:
        self.deleting.discard((tenant_id, dataset_id))

    def replace_chunks(self, tenant_id: str, dataset_id: str, chunks: list[Chunk]) -> None:
        self.chunks[(tenant_id, dataset_id)] = list(chunks)

    def list_chunks(self, tenant_id: str, dataset_id: str) -> list[Chunk]:
        return list(self.chunks.get((tenant_id, dataset_id), []))

    def bump_conversation_seq(self, tenant_id: str, dataset_id: str, n: int = 1) -> int | None:
        if (tenant_id, dataset_id) not in self.items:
            return None
        self.seq[(tenant_id, dataset_id)] = self.seq.get((tenant_id, dataset_id), 0) + n
        return self.seq[(tenant_id, dataset_id)]

    def conversation_seq(self, tenant_id: str, dataset_id: str) -> int:
        self._current(tenant_id, dataset_id)
        return self.seq.get((tenant_id, dataset_id), 0)


@dataclass
class _Stored:
    conversation: Conversation
    updated_ms: int
    deleted: bool = False
    search_text: str = ""


class InMemoryConversations:
    """PlannedConversations and ConversationChanges (what the list read model reads)."""

    def __init__(self, datasets: InMemoryDatasets) -> None:
        self._datasets = datasets
        self.items: dict[tuple[str, str], _Stored] = {}

    def _write(self, c: Conversation, **kw: Any) -> None:
        self.items[(c.tenant_id, c.conversation_id)] = _Stored(c, _ms(), **kw)

    def get(self, tenant_id: str, conversation_id: str) -> Conversation:
        stored = self.items.get((tenant_id, conversation_id))
        if stored is None or stored.deleted:
            raise NotFoundError("conversation", conversation_id)
        return stored.conversation

    def get_many(self, tenant_id: str, ids: Iterable[str]) -> dict[str, Conversation]:
        out: dict[str, Conversation] = {}
        for i in dict.fromkeys(ids):
            stored = self.items.get((tenant_id, i))
            if stored is not None and not stored.deleted:
                out[i] = stored.conversation
        return out

    def changed_since(
        self, tenant_id: str, dataset_id: str, since_ms: int
    ) -> Iterator[ConversationRow]:
        for (t, _), s in sorted(self.items.items(), key=lambda kv: kv[1].updated_ms):
            if (
                t == tenant_id
                and s.conversation.dataset_id == dataset_id
                and s.updated_ms > since_ms
            ):
                yield ConversationRow(s.conversation, s.search_text, s.deleted, s.updated_ms)

    def list_for_dataset(self, tenant_id: str, dataset_id: str) -> list[Conversation]:
        return [
            r.conversation for r in self.changed_since(tenant_id, dataset_id, -1) if not r.deleted
        ]

    def add_planned(self, conversations: list[Conversation]) -> None:
        if not conversations:
            return
        for c in conversations:
            self._write(c)
        first = conversations[0]
        self._datasets.bump_conversation_seq(first.tenant_id, first.dataset_id, len(conversations))

    def soft_delete(self, conversation: Conversation) -> None:
        stored = self.items.get((conversation.tenant_id, conversation.conversation_id))
        if (
            stored is None
            or stored.deleted
            or stored.conversation.status == ConversationStatus.GENERATING
        ):
            raise ConflictError("conversation is being generated or already deleted")
        self._write(stored.conversation, deleted=True)
        self._datasets.bump_conversation_seq(conversation.tenant_id, conversation.dataset_id)

    def purge_dataset(self, tenant_id: str, dataset_id: str) -> int:
        gone = [
            k
            for k, s in self.items.items()
            if k[0] == tenant_id and s.conversation.dataset_id == dataset_id
        ]
        for k in gone:
            del self.items[k]
        return len(gone)


class InMemoryListSnapshots:
    """ListSnapshots (domain/ports.py) in memory, counting what was asked of it."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], tuple[int, list[Conversation]]] = {}
        self.texts: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self.saves = 0
        self.text_loads = 0

    def load(self, tenant_id: str, dataset_id: str) -> ListSnapshot | None:
        found = self.rows.get((tenant_id, dataset_id))
        return ListSnapshot(found[0], iter(found[1])) if found else None

    def load_texts(self, tenant_id: str, dataset_id: str) -> Iterator[tuple[str, str]] | None:
        self.text_loads += 1
        found = self.texts.get((tenant_id, dataset_id))
        return iter(found) if found is not None else None

    def save(
        self,
        tenant_id: str,
        dataset_id: str,
        synced_ms: int,
        rows: Iterable[Conversation],
        texts: Iterable[tuple[str, str]],
    ) -> None:
        self.texts[(tenant_id, dataset_id)] = list(texts)
        self.rows[(tenant_id, dataset_id)] = (synced_ms, list(rows))
        self.saves += 1


class InMemoryAudit:
    """AuditStore (domain/ports.py): append-only."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    def append(self, record: AuditRecord) -> None:
        self.records.append(record)

    def append_many(self, records: list[AuditRecord]) -> None:
        self.records.extend(records)

    def actions(self, entity_id: str | None = None) -> list[str]:
        return [r.action for r in self.records if entity_id in (None, r.entity_id)]

    def get(self, tenant_id: str, sort_key: str) -> AuditRecord | None:
        return next(
            (r for r in self.records if r.tenant_id == tenant_id and r.sort_key == sort_key), None
        )

    def get_many(self, tenant_id: str, sort_keys: Iterable[str]) -> dict[str, AuditRecord]:
        wanted = set(sort_keys)
        return {
            r.sort_key: r for r in self.records if r.tenant_id == tenant_id and r.sort_key in wanted
        }

    def query(
        self,
        tenant_id: str,
        *,
        entity_id: str | None = None,
        action: str | None = None,
        actor: str | None = None,
        limit: int = 200,
        newest_first: bool = True,
    ) -> list[AuditRecord]:
        found = [
            r
            for r in self.records
            if r.tenant_id == tenant_id
            and entity_id in (None, r.entity_id)
            and action in (None, r.action)
            and actor in (None, r.actor)
        ]
        found.sort(key=lambda r: r.sort_key, reverse=newest_first)
        return found[:limit]


class InMemoryGenerationLogs:
    """GenerationLogReader over the calls ``InMemoryJobs.record_spend`` logged: keyed, as
    DynamoDB's log table is, by conversation and ``<created_at iso>#<log id>`` (a write
    of a key already there is refused), read back oldest key first."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], dict[str, GenerationLog]] = {}

    @staticmethod
    def sort_key(log: GenerationLog) -> str:
        return f"{log.created_at.isoformat()}#{log.log_id}"

    def has(self, log: GenerationLog) -> bool:
        return self.sort_key(log) in self.rows.get((log.tenant_id, log.conversation_id), {})

    def put(self, log: GenerationLog) -> bool:
        if self.has(log):
            return False
        rows = self.rows.setdefault((log.tenant_id, log.conversation_id), {})
        rows[self.sort_key(log)] = log.model_copy(deep=True)
        return True

    def list_for_conversation(self, tenant_id: str, conversation_id: str) -> list[GenerationLog]:
        rows = self.rows.get((tenant_id, conversation_id), {})
        return [rows[k].model_copy(deep=True) for k in sorted(rows)]


ITEM_OUTCOMES = ("completed", "failed", "skipped")  # each has its counter on the job


@dataclass
class InMemoryJobs:
    """JobStore with DynamoJobRepository's contract: ``set_status`` and
    ``advance_budget`` apply only while their conditions hold (False otherwise); an item's
    outcome is written once, with the job's counter (``record_item``, or a conversation
    commit through ``can_add_item``/``add_item``); ``record_spend`` logs a call once per
    log key (``logs``) and adds its cost to the job and, given ``datasets``, the dataset,
    all or nothing. ``outcomes`` (job id -> conversation id -> outcome) may be set by hand."""

    jobs: list[Job] = field(default_factory=list)
    outcomes: dict[str, dict[str, str]] = field(default_factory=dict)  # job id -> id -> outcome
    items: dict[tuple[str, str], JobItemWrite] = field(default_factory=dict)  # (job, conv)
    logs: InMemoryGenerationLogs = field(default_factory=InMemoryGenerationLogs)
    datasets: InMemoryDatasets | None = None
    batches: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    judge_batches: dict[str, dict[str, str]] = field(default_factory=dict)

    def create(self, job: Job) -> Job:
        self.jobs.append(job)
        return job

    def _find(self, tenant_id: str, job_id: str) -> int | None:
        for n, j in enumerate(self.jobs):
            if j.tenant_id == tenant_id and j.job_id == job_id:
                return n
        return None

    def _update(self, tenant_id: str, job_id: str, **changes: Any) -> Job:
        n = self._find(tenant_id, job_id)
        if n is None:
            raise NotFoundError("job", job_id)
        self.jobs[n] = self.jobs[n].model_copy(update=changes)
        return self.jobs[n]

    def get(self, tenant_id: str, job_id: str) -> Job:
        n = self._find(tenant_id, job_id)
        if n is None:
            raise NotFoundError("job", job_id)
        return self.jobs[n]

    def list_for_dataset(self, tenant_id: str, dataset_id: str, limit: int = 50) -> list[Job]:
        mine = [j for j in self.jobs if j.tenant_id == tenant_id and j.dataset_id == dataset_id]
        return sorted(mine, key=lambda j: j.created_at, reverse=True)[:limit]

    def list_for_tenant(self, tenant_id: str) -> list[Job]:
        return [j for j in self.jobs if j.tenant_id == tenant_id]

    def conversation_ids(self, job: Job) -> list[str]:
        return list(job.conversation_ids)

    def set_status(
        self,
        tenant_id: str,
        job_id: str,
        status: JobStatus,
        *,
        expected: Iterable[JobStatus] | None = None,
        executions: int | None = None,
        resume_lease_seconds: float | None = None,
        **fields: Any,
    ) -> bool:
        n = self._find(tenant_id, job_id)
        if n is None:
            return False
        job, now = self.jobs[n], utcnow()
        if expected is not None and job.status not in set(expected):
            return False
        if executions is not None and len(job.execution_arns) != executions:
            return False
        changes: dict[str, Any] = {"status": status, "updated_at": now}
        if resume_lease_seconds is not None:
            started = job.resume_started_at
            if started is not None and started >= now - timedelta(seconds=resume_lease_seconds):
                return False
            changes["resume_started_at"] = now
        for name, value in fields.items():
            # DynamoDB removes an attribute set to None: it reads back as the default.
            default = Job.model_fields[name].get_default(call_default_factory=True)
            changes[name] = default if value is None else value
        self._update(tenant_id, job_id, **changes)
        return True

    def active_jobs_all_tenants(self) -> list[tuple[str, str]]:
        return [(j.tenant_id, j.job_id) for j in self.jobs if j.status in ACTIVE_JOB_STATUSES]

    def set_current(self, tenant_id: str, job_id: str, current: dict[str, Any]) -> None:
        self._update(
            tenant_id, job_id, current=JobCurrent.model_validate(current), updated_at=utcnow()
        )

    def append_execution(self, tenant_id: str, job_id: str, arn: str) -> None:
        job = self.get(tenant_id, job_id)
        self._update(
            tenant_id, job_id, execution_arns=[*job.execution_arns, arn], resume_started_at=None
        )

    def end_resume(self, tenant_id: str, job_id: str) -> None:
        self._update(tenant_id, job_id, resume_started_at=None)

    def record_spend(
        self, log: GenerationLog, job_id: str | None, dataset_id: str | None = None
    ) -> bool:
        charge = round(log.cost_usd, 8)
        charge_job = bool(job_id and log.cost_usd)
        charge_dataset = bool(dataset_id and log.cost_usd and self.datasets is not None)
        if self.logs.has(log):
            return False  # the same call logged again: counted once
        if charge_job and self._find(log.tenant_id, str(job_id)) is None:
            return False  # the transaction's condition on the job fails: nothing written
        if charge_dataset and (log.tenant_id, dataset_id) not in self._dataset_items():
            return False
        self.logs.put(log)
        if charge_job:
            job = self.get(log.tenant_id, str(job_id))
            self._update(log.tenant_id, str(job_id), cost_usd=job.cost_usd + charge)
        if charge_dataset:
            items = self._dataset_items()
            d = items[(log.tenant_id, str(dataset_id))]
            items[(log.tenant_id, str(dataset_id))] = d.model_copy(
                update={"spent_usd": d.spent_usd + charge}
            )
        return True

    def _dataset_items(self) -> dict[tuple[str, str], Dataset]:
        return self.datasets.items if self.datasets is not None else {}

    def advance_budget(
        self,
        tenant_id: str,
        job_id: str,
        *,
        warned: Sequence[int],
        warn: Sequence[int],
        warnings: Sequence[dict[str, Any]],
        pause: bool,
        previous_status: JobStatus,
    ) -> bool:
        n = self._find(tenant_id, job_id)
        if n is None:
            return False
        job = self.jobs[n]
        if list(job.warned_thresholds) != list(warned):
            return False  # another item gave these warnings first
        if pause and job.status != previous_status:
            return False
        changes: dict[str, Any] = {"updated_at": utcnow()}
        if warn:
            changes["warned_thresholds"] = [*warned, *warn]
            changes["warnings"] = [
                *job.warnings,
                *(BudgetWarning.model_validate(w) for w in warnings),
            ]
        if pause:
            changes["status"] = JobStatus.PAUSING
            changes["pause_reason"] = "budget"
        self._update(tenant_id, job_id, **changes)
        return True

    def item_outcome(self, tenant_id: str, job_id: str, conversation_id: str) -> str | None:
        return self.outcomes.get(job_id, {}).get(conversation_id)

    def item_outcomes(self, tenant_id: str, job_id: str) -> dict[str, str]:
        return dict(self.outcomes.get(job_id, {}))

    def can_add_item(self, item: JobItemWrite) -> bool:
        """The conditions of an item's write: the job exists and the item has no outcome."""
        return (
            self._find(item.tenant_id, item.job_id) is not None
            and self.item_outcome(item.tenant_id, item.job_id, item.conversation_id) is None
        )

    def add_item(self, item: JobItemWrite) -> None:
        """The item's outcome and the job's counter (call after ``can_add_item``)."""
        if item.outcome not in ITEM_OUTCOMES:
            raise KeyError(item.outcome)
        message = (item.error_message or None) and item.error_message[:1000]
        self.items[(item.job_id, item.conversation_id)] = replace(item, error_message=message)
        self.outcomes.setdefault(item.job_id, {})[item.conversation_id] = item.outcome
        job = self.get(item.tenant_id, item.job_id)
        count = getattr(job, item.outcome) + 1
        self._update(item.tenant_id, item.job_id, **{item.outcome: count}, updated_at=utcnow())

    def record_item(self, item: JobItemWrite) -> bool:
        if not self.can_add_item(item):
            return False
        self.add_item(item)
        return True

    def set_batch_id(
        self, tenant_id: str, job_id: str, batch_id: str, execution: str | None = None
    ) -> None:
        self.batches[job_id] = (batch_id, execution)

    def batch_id(self, tenant_id: str, job_id: str, execution: str | None = None) -> str | None:
        found = self.batches.get(job_id)
        if found is None:
            return None
        batch, owner = found
        return None if execution and owner and owner != execution else batch

    def set_judge_batch(self, tenant_id: str, job_id: str, batch: dict[str, str]) -> None:
        self.judge_batches[job_id] = dict(batch)

    def judge_batch(self, tenant_id: str, job_id: str) -> dict[str, str] | None:
        found = self.judge_batches.get(job_id)
        return dict(found) if found else None


class InMemoryGenerationConversations(InMemoryConversations):
    """GenerationConversations with DynamoConversationRepository's contract: the claim
    (not_generated|failed -> generating, owned by the job and its claim token; a re-claim
    by the same job and token counts the attempt; a conversation this job stored or
    failed is already done; anything else ineligible), ``release_claim`` (only the owning job's
    claim), and ``commit_generation`` / ``commit_failure`` as one transaction each,
    guarded by the claim and by the job-item marker (``jobs.can_add_item``): a refused
    commit writes nothing and returns False. A commit keeps the generation it replaces as
    a version, stores the turns, adds the job item and the audit record, and bumps the
    dataset's change counter (the claim and a release do not, as in DynamoDB)."""

    def __init__(
        self, datasets: InMemoryDatasets, jobs: InMemoryJobs, audit: InMemoryAudit
    ) -> None:
        super().__init__(datasets)
        self.jobs = jobs
        self.audit = audit
        self.turns: dict[tuple[str, str], TurnsItem] = {}
        self.earlier: dict[tuple[str, str], list[ConversationVersion]] = {}

    def _replace(self, stored: _Stored, c: Conversation, search_text: str | None = None) -> None:
        text = stored.search_text if search_text is None else search_text
        self._write(c, deleted=stored.deleted, search_text=text)

    def get_many(
        self, tenant_id: str, ids: Iterable[str], consistent: bool = False
    ) -> dict[str, Conversation]:
        return super().get_many(tenant_id, ids)

    def get_turns(self, tenant_id: str, conversation_id: str) -> list[Turn]:
        item = self.turns.get((tenant_id, conversation_id))
        return list(item.turns) if item else []

    def claim_for_generation(
        self,
        tenant_id: str,
        conversation_id: str,
        job_id: str,
        token: str = "",
        estimated_cost_usd: float | None = None,
    ) -> tuple[ClaimOutcome, Conversation | None]:
        stored = self.items.get((tenant_id, conversation_id))
        if stored is None or stored.deleted:
            return ClaimOutcome.INELIGIBLE, None
        c, owner, now = stored.conversation, token or job_id, utcnow()
        common: dict[str, Any] = {"updated_at": now, "version": c.version + 1}
        failed_by_this_job = c.status == ConversationStatus.FAILED and c.job_id == job_id
        if c.status in GENERATABLE_STATUSES and not failed_by_this_job:
            update: dict[str, Any] = {
                "status": ConversationStatus.GENERATING,
                "job_id": job_id,
                "claim_token": owner,
                "generation_attempts": 1,
                "error_message": None,
                **common,
            }
            if estimated_cost_usd is not None:
                update["estimated_cost_usd"] = round(estimated_cost_usd, 6)
        elif (
            c.status == ConversationStatus.GENERATING
            and c.job_id == job_id
            and c.claim_token == owner
        ):
            update = {"generation_attempts": c.generation_attempts + 1, **common}
        elif c.job_id == job_id and (c.status in REVIEWABLE_STATUSES or failed_by_this_job):
            return ClaimOutcome.ALREADY_DONE, c
        else:
            return ClaimOutcome.INELIGIBLE, c
        claimed = c.model_copy(update=update)
        self._replace(stored, claimed)
        return ClaimOutcome.CLAIMED, claimed

    def assign_chunk(self, conversation: Conversation, chunk: Chunk, scenario: str) -> bool:
        stored = self.items.get((conversation.tenant_id, conversation.conversation_id))
        if (
            stored is None
            or stored.deleted
            or stored.conversation.status not in GENERATABLE_STATUSES
            or stored.conversation.version != conversation.version
            or stored.conversation.chunk_id is not None
        ):
            return False
        c = stored.conversation
        update = {
            "chunk_id": chunk.chunk_id,
            "document_id": chunk.document_id,
            "scenario": scenario,
            "updated_at": utcnow(),
            "version": c.version + 1,
        }
        self._replace(stored, c.model_copy(update=update))
        return True

    def release_claim(self, tenant_id: str, conversation_id: str, job_id: str) -> None:
        stored = self.items.get((tenant_id, conversation_id))
        if (
            stored is None
            or stored.conversation.status != ConversationStatus.GENERATING
            or stored.conversation.job_id != job_id
        ):
            return  # the condition fails: nothing to release
        released = stored.conversation.model_copy(
            update={"status": ConversationStatus.NOT_GENERATED, "claim_token": None}
        )
        self._replace(stored, released)

    def _held_by(self, conversation: Conversation) -> _Stored | None:
        """The stored conversation if ``conversation``'s job still holds its claim."""
        stored = self.items.get((conversation.tenant_id, conversation.conversation_id))
        if (
            stored is None
            or stored.conversation.status != ConversationStatus.GENERATING
            or stored.conversation.job_id != (conversation.job_id or "")
        ):
            return None
        return stored

    def commit_generation(
        self,
        conversation: Conversation,
        turns: list[Turn],
        job_item: JobItemWrite | None,
        audit: AuditRecord | None = None,
    ) -> bool:
        stored = self._held_by(conversation)
        if stored is None or (job_item is not None and not self.jobs.can_add_item(job_item)):
            return False
        key = (conversation.tenant_id, conversation.conversation_id)
        previous = self.turns.get(key)
        number = 1
        if previous is not None:  # a regeneration: the generation it replaces is a version
            held = stored.conversation
            number = max(held.generation_number, 1)
            earlier = ConversationVersion.of(number, held, previous.turns, previous.feedback)
            self.earlier.setdefault(key, []).append(earlier)
            number += 1
        record = conversation.model_copy(update={"generation_number": number})
        self._write(record, search_text=" ".join(t.content for t in turns).lower())
        self.turns[key] = TurnsItem(list(turns), {}, utcnow())
        if job_item is not None:
            self.jobs.add_item(job_item)
        if audit is not None:
            self.audit.append(audit)
        self._datasets.bump_conversation_seq(conversation.tenant_id, conversation.dataset_id)
        return True

    def commit_failure(
        self, conversation: Conversation, message: str, job_item: JobItemWrite | None
    ) -> bool:
        stored = self._held_by(conversation)
        if stored is None or (job_item is not None and not self.jobs.can_add_item(job_item)):
            return False
        c = stored.conversation
        failed = c.model_copy(
            update={
                "status": ConversationStatus.FAILED,
                "error_message": message[:2000],
                "updated_at": utcnow(),
                "version": c.version + 1,
            }
        )
        self._replace(stored, failed)
        if job_item is not None:
            self.jobs.add_item(job_item)
        self._datasets.bump_conversation_seq(conversation.tenant_id, conversation.dataset_id)
        return True

    def save_quality(self, conversation: Conversation) -> None:
        stored = self.items.get((conversation.tenant_id, conversation.conversation_id))
        if stored is None:
            raise NotFoundError("conversation", conversation.conversation_id)
        scored = stored.conversation.model_copy(
            update={
                "quality_score": conversation.quality_score,
                "quality": conversation.quality,
                "quality_summary": conversation.quality_brief(),
            }
        )
        self._replace(stored, scored)
        self._datasets.bump_conversation_seq(conversation.tenant_id, conversation.dataset_id)


@dataclass
class PurgeProgress:
    done: bool
    conversations: int = 0

    def counts(self) -> dict[str, int]:
        return {"conversations": self.conversations}


class InMemoryPurger:
    """DatasetPurger: removes the dataset and its conversations at once."""

    def __init__(self, datasets: InMemoryDatasets, conversations: InMemoryConversations) -> None:
        self._datasets = datasets
        self._conversations = conversations

    def purge(self, tenant_id: str, dataset_id: str, deadline: float) -> PurgeProgress:
        removed = self._conversations.purge_dataset(tenant_id, dataset_id)
        self._datasets.items.pop((tenant_id, dataset_id), None)
        self._datasets.deleting.discard((tenant_id, dataset_id))
        self._datasets.chunks.pop((tenant_id, dataset_id), None)
        return PurgeProgress(done=True, conversations=removed)


@dataclass
class FixedTemplates:
    """ActiveTemplates: a fixed list."""

    templates: list[PromptTemplate] = field(default_factory=list)

    def active_for_generation(self, tenant_id: str) -> list[PromptTemplate]:
        return [t for t in self.templates if t.tenant_id == tenant_id]


class InMemoryExports:
    """ExportStore: claim and save_if_pending are conditional as in DynamoDB."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], ExportRecord] = {}

    def save(self, export: ExportRecord) -> ExportRecord:
        self.items[(export.tenant_id, export.export_id)] = export.model_copy(deep=True)
        return export

    def _pending(self, export: ExportRecord) -> ExportRecord | None:
        stored = self.items.get((export.tenant_id, export.export_id))
        return stored if stored is not None and stored.status == ExportStatus.PENDING else None

    def claim(self, export: ExportRecord, token: str) -> ExportRecord | None:
        stored = self._pending(export)
        if stored is None or stored.claim_token is not None:
            return None
        claimed = export.model_copy(update={"claim_token": token, "started_at": utcnow()})
        self.save(claimed)
        return claimed

    def save_if_pending(self, export: ExportRecord, claim_token: str | None) -> bool:
        stored = self._pending(export)
        if stored is None or stored.claim_token != claim_token:
            return False
        self.save(export)
        return True

    def get(self, tenant_id: str, export_id: str) -> ExportRecord:
        if (tenant_id, export_id) not in self.items:
            raise NotFoundError("export", export_id)
        return self.items[(tenant_id, export_id)].model_copy(deep=True)

    def list_all(self, tenant_id: str) -> list[ExportRecord]:
        mine = [e for (t, _), e in self.items.items() if t == tenant_id]
        return sorted(mine, key=lambda e: e.created_at, reverse=True)


class InMemoryApproved:
    """ApprovedConversations over InMemoryConversations: the exported filters of the
    registry (domain/filters.py) and the quality bounds, as the DynamoDB query applies
    them; turns from ``turns``."""

    def __init__(self, conversations: InMemoryConversations) -> None:
        self._conversations = conversations
        self.turns_of: dict[str, list[StoredTurn]] = {}

    def approved(
        self,
        tenant_id: str,
        dataset_id: str,
        filters: Mapping[str, Any],
        fields: Collection[str] | None = None,
        page_size: int | None = None,
    ) -> Iterator[Conversation]:
        for c in self._conversations.list_for_dataset(tenant_id, dataset_id):
            if (
                c.status == ConversationStatus.APPROVED
                and matches_filters(c, filters, EXPORT_FILTERS)
                and in_quality_range(
                    c.quality_score, filters.get("quality_min"), filters.get("quality_max")
                )
            ):
                yield c

    def approved_with_duplicates(
        self,
        tenant_id: str,
        dataset_id: str,
        filters: Mapping[str, Any],
        fields: Collection[str] | None = None,
    ) -> Iterator[tuple[Conversation, str | None]]:
        for c in self.approved(tenant_id, dataset_id, filters, fields):
            yield c, c.quality.duplicate_of if c.quality is not None else None

    def count_approved(
        self, tenant_id: str, dataset_id: str, filters: Mapping[str, Any], stop_at: int
    ) -> int | None:
        return min(sum(1 for _ in self.approved(tenant_id, dataset_id, filters)), stop_at)

    def turns(self, tenant_id: str, conversation_ids: Iterable[str]) -> dict[str, list[StoredTurn]]:
        return {i: self.turns_of[i] for i in conversation_ids if i in self.turns_of}


class InMemoryS3:
    """The S3 calls an export makes, in memory: objects by key, multipart uploads
    joined in part order, presigned URLs that name the key."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.uploads: dict[str, dict[int, bytes]] = {}

    def put_object(self, Bucket: str, Key: str, Body: Any, **kw: object) -> None:
        # bytes, or a file the export spooled (boto3 reads it to the end, as here)
        self.objects[Key] = Body.read() if hasattr(Body, "read") else bytes(Body)

    def create_multipart_upload(self, Bucket: str, Key: str, **kw: object) -> dict[str, str]:
        upload_id = f"up-{len(self.uploads) + 1}"
        self.uploads[upload_id] = {}
        return {"UploadId": upload_id}

    def upload_part(
        self, Bucket: str, Key: str, UploadId: str, PartNumber: int, Body: Any, **kw: object
    ) -> dict[str, str]:
        self.uploads[UploadId][PartNumber] = Body.read() if hasattr(Body, "read") else bytes(Body)
        return {"ETag": f"etag-{PartNumber}"}

    def complete_multipart_upload(
        self, Bucket: str, Key: str, UploadId: str, MultipartUpload: dict[str, Any]
    ) -> None:
        parts = self.uploads.pop(UploadId)
        self.objects[Key] = b"".join(parts[p["PartNumber"]] for p in MultipartUpload["Parts"])

    def abort_multipart_upload(self, Bucket: str, Key: str, UploadId: str) -> None:
        self.uploads.pop(UploadId, None)

    def copy_object(self, Bucket: str, Key: str, CopySource: dict[str, str], **kw: object) -> None:
        self.objects[Key] = self.objects[CopySource["Key"]]

    def delete_object(self, Bucket: str, Key: str) -> None:
        self.objects.pop(Key, None)

    def generate_presigned_url(self, method: str, Params: dict[str, str], ExpiresIn: int) -> str:
        return f"https://s3.invalid/{Params['Key']}?expires={ExpiresIn}"


class NoGenerationLogs:
    """GenerationLogReader of conversations written by hand: no calls were made."""

    def list_for_conversation(self, tenant_id: str, conversation_id: str) -> list[Any]:
        return []


class InMemoryReviewedConversations(InMemoryConversations):
    """ReviewedConversations: turns and their marks, earlier versions, the trash, and
    every review write conditional on the version read, committed with its audit record
    (the contract of DynamoConversationRepository.write_reviews)."""

    def __init__(self, datasets: InMemoryDatasets, audit: InMemoryAudit) -> None:
        super().__init__(datasets)
        self.audit = audit
        self.turns: dict[tuple[str, str], TurnsItem] = {}
        self.earlier: dict[tuple[str, str], list[ConversationVersion]] = {}
        self.purge_at: dict[tuple[str, str], datetime] = {}

    def set_turns(self, conversation: Conversation, turns: list[Turn]) -> None:
        self.turns[(conversation.tenant_id, conversation.conversation_id)] = TurnsItem(
            turns, {}, utcnow()
        )

    def get_many(
        self, tenant_id: str, ids: Iterable[str], consistent: bool = False
    ) -> dict[str, Conversation]:
        return super().get_many(tenant_id, ids)

    def get_turns_item(self, tenant_id: str, conversation_id: str) -> TurnsItem | None:
        return self.turns.get((tenant_id, conversation_id))

    def get_with_turns(self, tenant_id: str, conversation_id: str) -> ConversationWithTurns:
        conversation = self.get(tenant_id, conversation_id)
        item = self.get_turns_item(tenant_id, conversation_id)
        return ConversationWithTurns(
            conversation=conversation,
            turns=item.turns if item else [],
            feedback=item.feedback if item else {},
        )

    def versions(
        self, tenant_id: str, conversation_id: str, with_turns: bool = False
    ) -> list[ConversationVersion]:
        return list(self.earlier.get((tenant_id, conversation_id), []))

    def version(self, tenant_id: str, conversation_id: str, number: int) -> ConversationVersion:
        for v in self.earlier.get((tenant_id, conversation_id), []):
            if v.number == number:
                return v
        raise NotFoundError("version", str(number))

    def _in_trash(self, key: tuple[str, str]) -> bool:
        stored = self.items.get(key)
        return (
            stored is not None
            and stored.deleted
            and stored.conversation.trashed_at is not None
            and self.purge_at.get(key, utcnow()) > utcnow()
        )

    def trash(self, tenant_id: str, dataset_id: str) -> list[tuple[Conversation, datetime]]:
        rows = [
            (self.items[k].conversation, self.purge_at[k])
            for k in self.items
            if k[0] == tenant_id
            and self.items[k].conversation.dataset_id == dataset_id
            and self._in_trash(k)
        ]
        return sorted(rows, key=lambda r: r[0].trashed_at or r[1], reverse=True)

    def trashed(
        self, tenant_id: str, ids: Iterable[str], consistent: bool = False
    ) -> dict[str, Conversation]:
        return {
            i: self.items[(tenant_id, i)].conversation
            for i in dict.fromkeys(ids)
            if self._in_trash((tenant_id, i))
        }

    def _failure(self, tenant_id: str, conversation_id: str) -> ReviewFailure:
        current = super().get_many(tenant_id, [conversation_id]).get(conversation_id)
        if current is None:
            return ReviewFailure("not_found")
        if current.status == ConversationStatus.GENERATING:
            return ReviewFailure("generating", current)
        return ReviewFailure("stale", current)

    def write_reviews(self, writes: Sequence[ReviewWrite]) -> dict[str, ReviewFailure]:
        failed: dict[str, ReviewFailure] = {}
        now = utcnow()
        for w in writes:
            c = w.before
            key = (c.tenant_id, c.conversation_id)
            stored = self.items.get(key)
            if w.restore:
                ok = (
                    stored is not None
                    and self._in_trash(key)
                    and stored.conversation.version == c.version
                )
            else:
                # a review is conditional on the version; a move to the trash also on
                # the conversation not being generated
                ok = (
                    stored is not None
                    and not stored.deleted
                    and stored.conversation.version == c.version
                    and (w.after is not None or c.status != ConversationStatus.GENERATING)
                )
            if not ok:
                failed[c.conversation_id] = self._failure(c.tenant_id, c.conversation_id)
                continue
            if w.after is None:
                trashed = c.model_copy(
                    update={
                        "trashed_at": now,
                        "trashed_by": w.audit.actor,
                        "version": c.version + 1,
                        "updated_at": now,
                    }
                )
                self._write(trashed, deleted=True)
                self.purge_at[key] = now + timedelta(days=TRASH_RETENTION_DAYS)
            else:
                self._write(w.after)
                self.purge_at.pop(key, None)
            self.audit.append(w.audit)
        return failed

    def write_turn_feedback(
        self,
        before: Conversation,
        after: Conversation,
        item: TurnsItem,
        turns: list[Turn],
        feedback: dict[int, TurnFeedback],
        audit: AuditRecord,
    ) -> ReviewFailure | None:
        key = (before.tenant_id, before.conversation_id)
        stored = self.items.get(key)
        current_turns = self.turns.get(key)
        if (
            stored is None
            or stored.deleted
            or stored.conversation.version != before.version
            or stored.conversation.status == ConversationStatus.GENERATING
            or current_turns is None
            or current_turns.created_at != item.created_at
        ):
            return self._failure(before.tenant_id, before.conversation_id)
        self._write(after)
        self.turns[key] = TurnsItem(turns, dict(feedback), item.created_at)
        self.audit.append(audit)
        return None

    def reset_for_regeneration(self, conversation: Conversation) -> Conversation:
        key = (conversation.tenant_id, conversation.conversation_id)
        stored = self.items.get(key)
        if (
            stored is None
            or stored.deleted
            or stored.conversation.status == ConversationStatus.GENERATING
            or stored.conversation.version != conversation.version
        ):
            raise ConflictError("conversation is being generated or was changed; try again")
        reset = stored.conversation.model_copy(
            update={
                "status": ConversationStatus.NOT_GENERATED,
                "approved_by": None,
                "approved_at": None,
                "error_message": None,
                "updated_at": utcnow(),
                "version": stored.conversation.version + 1,
            }
        )
        self._write(reset)
        self._datasets.bump_conversation_seq(conversation.tenant_id, conversation.dataset_id)
        return reset


Step = LLMResponse | Exception | Callable[[LLMRequest], LLMResponse]


class ScriptedLLM:
    """LLMClient as AnthropicLLMClient behaves for the services: ``create`` gives the
    scripted steps in order: an answer, an error to raise (the workflow's error classes,
    as ``translate_error`` makes them), or a callable of the request (for what happens
    while the call is in flight). Every request is kept in ``requests``; a call past the
    end of the script fails the test. No batches."""

    def __init__(self, *script: Step) -> None:
        self.script: list[Step] = list(script)
        self.requests: list[LLMRequest] = []

    def then(self, *steps: Step) -> ScriptedLLM:
        self.script.extend(steps)
        return self

    def create(self, request: LLMRequest) -> LLMResponse:
        self.requests.append(request)
        if not self.script:
            raise AssertionError(f"unexpected LLM call #{len(self.requests)}: {request.model}")
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        if callable(step):
            return step(request)
        return step

    def count_tokens(self, request: LLMRequest) -> int:
        return max(1, len(request.system + request.prompt) // 4)

    def submit_batch(self, requests: list[tuple[str, LLMRequest]]) -> str:
        raise AssertionError("ScriptedLLM runs no Message Batches")

    def batch_status(self, batch_id: str) -> BatchStatus:
        raise AssertionError("ScriptedLLM runs no Message Batches")

    def batch_results(self, batch_id: str) -> Iterator[tuple[str, LLMResponse | None, str | None]]:
        raise AssertionError("ScriptedLLM runs no Message Batches")


class InMemoryNotifications:
    """NotificationRepository: the messages a Notifier without an SNS topic stores."""

    def __init__(self) -> None:
        self.messages: list[NotificationMessage] = []

    def add_message(self, message: NotificationMessage) -> None:
        self.messages.append(message)

    def kinds(self) -> list[str]:
        return [m.kind for m in self.messages]


class InMemoryRateLimitStore:
    """The RateLimitStore protocol (chalicelib/generation/rate_limit.py) in memory,
    atomic like DynamoRateLimitStore's conditional writes. ``clock`` is its own time
    (moved by ``op_seconds`` per operation: a slow store)."""

    def __init__(self, op_seconds: float = 0.0) -> None:
        self.lock = threading.Lock()
        self.tat: dict[str, int] = {}
        self.blocked: dict[str, int] = {}
        self.reads = 0
        self.writes = 0
        self.now = 1000.0
        self.op_seconds = op_seconds  # each operation moves the clock (a slow store)

    def clock(self) -> float:
        with self.lock:
            return self.now

    def read(self, key: str) -> tuple[int, int]:
        with self.lock:
            self.reads += 1
            self.now += self.op_seconds
            found = self.tat.get(key, 0), self.blocked.get(key, 0)
        self._travel_back()
        return found

    def compare_and_set(self, key: str, old_tat: int, new_tat: int) -> bool:
        with self.lock:
            self.writes += 1
            self.now += self.op_seconds
            if self.tat.get(key, 0) != old_tat:
                return False
            self.tat[key] = new_tat
            return True

    def block_until(self, key: str, until: int) -> None:
        with self.lock:
            self.blocked[key] = max(self.blocked.get(key, 0), until)

    def advance(self, key: str, interval: int, floor: int) -> tuple[int, int] | None:
        with self.lock:
            self.writes += 1
            self.now += self.op_seconds
            if key not in self.tat or self.tat[key] < floor:
                found = None
            else:
                self.tat[key] += interval
                found = self.tat[key], self.blocked.get(key, 0)
        self._travel_back()
        return found

    def shift(self, key: str, delta_ms: int) -> None:
        with self.lock:
            if key in self.tat:
                self.tat[key] += delta_ms

    def reanchor(self, key: str, floor: int, interval: int) -> tuple[int, int] | None:
        with self.lock:
            self.writes += 1
            self.now += self.op_seconds
            if key in self.tat and self.tat[key] >= floor:
                found = None
            else:
                self.tat[key] = floor + interval
                found = self.tat[key], self.blocked.get(key, 0)
        self._travel_back()
        return found

    def _travel_back(self) -> None:
        if self.op_seconds:
            time.sleep(0.002)  # the answer travels back: other callers write meanwhile
