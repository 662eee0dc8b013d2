"""Datasets: create and edit, taxonomy and chunk imports, planning, coverage, gap filling."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from chalicelib.audit.log import AuditLog, snapshot
from chalicelib.domain.dataset_rules import (
    active_jobs,
    require_no_active_job,
    require_writable,
    taxonomy_impact,
)
from chalicelib.domain.errors import ConflictError
from chalicelib.domain.model_names import check_model_name
from chalicelib.domain.models import (
    Chunk,
    Conversation,
    ConversationStatus,
    Dataset,
    Job,
    QualityRules,
    Taxonomy,
    Tier,
    TierDistribution,
)
from chalicelib.domain.ports import ActiveTemplates, DatasetStore, PlannedConversations
from chalicelib.domain.quality_rules import check_disclaimer_topics
from chalicelib.generation.prompts import excerpt_free_templates, generation_blockers
from chalicelib.planning.coverage import (
    analyze_coverage,
    plan_for_gap,
    plan_gap_fill,
    scope_for_filters,
)
from chalicelib.planning.imports import parse_chunks_csv, parse_chunks_json, parse_taxonomy
from chalicelib.planning.planner import pair_coverage, plan_conversations
from chalicelib.planning.sample_data import load_sample_dataset

DATASET_FIELDS = (
    "name",
    "description",
    "business_name",
    "target_count",
    "tier_distribution",
    "budget_usd",
    "model",
    "quality_rules",
    "judge_mode",
    "require_reject_note",
)


class DatasetJobs(Protocol):
    def list_for_dataset(self, tenant_id: str, dataset_id: str, limit: int = 50) -> list[Job]: ...


class PurgeResult(Protocol):
    done: bool

    def counts(self) -> dict[str, int]: ...


class DatasetPurger(Protocol):
    def purge(self, tenant_id: str, dataset_id: str, deadline: float) -> PurgeResult: ...


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _dataset_snapshot(d: Dataset) -> dict[str, Any]:
    data = d.model_dump(mode="json")
    return {k: data.get(k) for k in (*DATASET_FIELDS, "version")}


class DatasetService:
    def __init__(
        self,
        datasets: DatasetStore,
        conversations: PlannedConversations,
        audit: AuditLog,
        index: Any,  # ConversationIndex
        known_models: Sequence[str] = (),
        jobs: DatasetJobs | None = None,
        purger: DatasetPurger | None = None,
        delete_budget_seconds: float = 20.0,
        templates: ActiveTemplates | None = None,
    ) -> None:
        self.datasets = datasets
        self.conversations = conversations
        self.audit = audit
        self.index = index
        # The price table's models: the only ones a dataset may name.
        self.known_models = tuple(known_models)
        self.jobs = jobs
        self.purger = purger
        # A delete purges within this many seconds per call (an API request's time);
        # what is left is purged by the next call.
        self.delete_budget_seconds = delete_budget_seconds
        self.templates = templates

    def _model(self, name: str) -> str:
        return check_model_name(name, self.known_models)

    def create(self, tenant_id: str, actor: str, data: dict[str, Any]) -> Dataset:
        if data.get("model") is not None:
            self._model(data["model"])
        dataset = Dataset(
            tenant_id=tenant_id,
            created_by=actor,
            **{k: v for k, v in data.items() if v is not None},
        )
        self.datasets.create(dataset)
        self.audit.record(
            tenant_id,
            actor,
            "dataset.create",
            "dataset",
            dataset.dataset_id,
            after=_dataset_snapshot(dataset),
        )
        return dataset

    def create_sample(self, tenant_id: str, actor: str) -> Dataset:
        taxonomy, chunks, meta = load_sample_dataset()
        dataset = Dataset(
            tenant_id=tenant_id,
            created_by=actor,
            name=meta.get("name", "Sample dataset"),
            description=meta.get("description", ""),
            business_name=meta.get("business_name") or meta.get("name"),
            budget_usd=meta.get("suggested_budget_usd") or meta.get("budget_usd") or 25.0,
            taxonomy=taxonomy,
            chunk_count=len(chunks),
        )
        self.datasets.create(dataset)
        self.datasets.replace_chunks(tenant_id, dataset.dataset_id, chunks)
        self.audit.record(
            tenant_id,
            actor,
            "dataset.create",
            "dataset",
            dataset.dataset_id,
            after=_dataset_snapshot(dataset),
            sample=True,
            chunks=len(chunks),
        )
        return dataset

    def get(self, tenant_id: str, dataset_id: str) -> Dataset:
        return self.datasets.get(tenant_id, dataset_id)

    def list_all(self, tenant_id: str, include_archived: bool = True) -> list[Dataset]:
        found = self.datasets.list_all(tenant_id)
        if not include_archived:
            found = [d for d in found if not d.archived]
        return sorted(found, key=lambda d: d.created_at, reverse=True)

    def _writable(self, tenant_id: str, dataset_id: str) -> Dataset:
        dataset = self.datasets.get(tenant_id, dataset_id)
        require_writable(dataset)
        return dataset

    # ------------------------------------------------------------------ archive, delete
    def _jobs_of(self, tenant_id: str, dataset_id: str) -> list[Job]:
        return self.jobs.list_for_dataset(tenant_id, dataset_id, limit=1000) if self.jobs else []

    def archive(self, tenant_id: str, actor: str, dataset_id: str) -> Dataset:
        current = self.datasets.get(tenant_id, dataset_id)
        if current.archived:
            return current  # archiving twice changes nothing
        require_no_active_job(current, self._jobs_of(tenant_id, dataset_id), "archive")
        saved = self.datasets.set_archived(tenant_id, dataset_id, actor, current.version)
        self.audit.record(
            tenant_id,
            actor,
            "dataset.archive",
            "dataset",
            dataset_id,
            before={"archived_at": None, "version": current.version},
            after={"archived_at": _iso(saved.archived_at), "version": saved.version},
        )
        return saved

    def unarchive(self, tenant_id: str, actor: str, dataset_id: str) -> Dataset:
        current = self.datasets.get(tenant_id, dataset_id)
        if not current.archived:
            return current
        saved = self.datasets.set_archived(tenant_id, dataset_id, None, current.version)
        self.audit.record(
            tenant_id,
            actor,
            "dataset.unarchive",
            "dataset",
            dataset_id,
            before={"archived_at": _iso(current.archived_at), "version": current.version},
            after={"archived_at": None, "version": saved.version},
        )
        return saved

    def delete(self, tenant_id: str, actor: str, dataset_id: str) -> dict[str, Any]:
        """Delete the dataset and everything it owns (conversations, trashed ones too,
        with turns, versions and generation logs; jobs and their items; chunks). Refused
        while a job is active. Hidden at once; a purge that does not finish within this
        call's time is carried on by the next call (``status: deleting``). The audit
        trail and exports (their records and files) are kept."""
        assert self.purger is not None, "the container wires a purger"
        current = self.datasets.get(tenant_id, dataset_id, include_deleting=True)
        deleting = self.datasets.get_deleting(tenant_id, dataset_id)
        if not deleting:
            jobs = self._jobs_of(tenant_id, dataset_id)
            require_no_active_job(current, jobs, "delete")
            self.datasets.mark_deleting(tenant_id, dataset_id, current.version)
            # A job started between that check and the mark read the dataset first.
            late = active_jobs(self._jobs_of(tenant_id, dataset_id))
            if late:
                self.datasets.unmark_deleting(tenant_id, dataset_id)
                require_no_active_job(current, late, "delete")
            self.audit.record(
                tenant_id,
                actor,
                "dataset.delete",
                "dataset",
                dataset_id,
                before=_dataset_snapshot(current),
                after=None,
                jobs=len(jobs),
                exports_kept=True,
            )
        if self.index is not None:
            self.index.forget(tenant_id, dataset_id)
        deadline = time.monotonic() + self.delete_budget_seconds
        progress = self.purger.purge(tenant_id, dataset_id, deadline)
        if progress.done:
            self.audit.record(
                tenant_id,
                actor,
                "dataset.purge",
                "dataset",
                dataset_id,
                after={"deleted": progress.counts()},
            )
        return {
            "dataset_id": dataset_id,
            "deleted": progress.done,
            "status": "deleted" if progress.done else "deleting",
            "removed": progress.counts(),
            "exports_kept": True,
        }

    def update(
        self, tenant_id: str, actor: str, dataset_id: str, changes: dict[str, Any]
    ) -> Dataset:
        current = self._writable(tenant_id, dataset_id)
        expected = changes.get("version", current.version)
        if expected != current.version:
            from chalicelib.domain.errors import StaleVersionError

            raise StaleVersionError(
                "the dataset was changed by someone else",
                {"current": current.model_dump(mode="json")},
            )
        update = {k: changes[k] for k in DATASET_FIELDS if k in changes and changes[k] is not None}
        if (
            "budget_usd" in changes
            and changes["budget_usd"] is None
            and changes.get("clear_budget")
        ):
            update["budget_usd"] = None
        if "quality_rules" in update:
            rules = update["quality_rules"]
            if isinstance(rules, dict):
                rules = QualityRules.model_validate(rules)
            update["quality_rules"] = check_disclaimer_topics(rules, current.taxonomy)
        if "model" in changes:
            # null clears it: generation falls back to the default model.
            update["model"] = None if changes["model"] is None else self._model(changes["model"])
        if "tier_distribution" in update and isinstance(update["tier_distribution"], dict):
            update["tier_distribution"] = TierDistribution.model_validate(
                update["tier_distribution"]
            )
        updated = current.model_copy(update=update)
        saved = self.datasets.save(updated, current.version)
        self.audit.record(
            tenant_id,
            actor,
            "dataset.update",
            "dataset",
            dataset_id,
            before=_dataset_snapshot(current),
            after=_dataset_snapshot(saved),
        )
        return saved

    def taxonomy_impact(self, tenant_id: str, dataset_id: str, data: Any) -> dict[str, Any]:
        """What ``PUT .../taxonomy`` with ``data`` would change (validated the same way);
        nothing is written."""
        current = self.datasets.get(tenant_id, dataset_id)
        proposed = parse_taxonomy(data)
        conversations = self.index.conversations(tenant_id, dataset_id) if self.index else []
        return taxonomy_impact(current.taxonomy, proposed, conversations)

    def set_taxonomy(self, tenant_id: str, actor: str, dataset_id: str, data: Any) -> Dataset:
        current = self._writable(tenant_id, dataset_id)
        taxonomy = parse_taxonomy(data)
        saved = self.datasets.save(
            current.model_copy(update={"taxonomy": taxonomy}), current.version
        )
        self.audit.record(
            tenant_id,
            actor,
            "dataset.taxonomy",
            "dataset",
            dataset_id,
            before={"counts": _taxonomy_counts(current.taxonomy)},
            after={"counts": _taxonomy_counts(taxonomy)},
        )
        return saved

    def import_chunks(
        self, tenant_id: str, actor: str, dataset_id: str, body: Any, content_type: str
    ) -> dict[str, Any]:
        dataset = self._writable(tenant_id, dataset_id)
        taxonomy = dataset.taxonomy if _taxonomy_counts(dataset.taxonomy)["personas"] else None
        if isinstance(body, str):
            chunks = parse_chunks_csv(body, taxonomy)
        else:
            if isinstance(body, dict) and "chunks" in body:
                body = body["chunks"]
            chunks = parse_chunks_json(body, taxonomy)
        self.datasets.replace_chunks(tenant_id, dataset_id, chunks)
        saved = self.datasets.save(
            dataset.model_copy(update={"chunk_count": len(chunks)}), dataset.version
        )
        self.audit.record(
            tenant_id,
            actor,
            "dataset.chunks",
            "dataset",
            dataset_id,
            before={"chunk_count": dataset.chunk_count},
            after={"chunk_count": len(chunks)},
            content_type=content_type,
        )
        return {"imported": len(chunks), "dataset": saved}

    def chunks(self, tenant_id: str, dataset_id: str) -> list[Any]:
        self.datasets.get(tenant_id, dataset_id)
        return self.datasets.list_chunks(tenant_id, dataset_id)

    def _require_taxonomy(self, dataset: Dataset) -> None:
        counts = _taxonomy_counts(dataset.taxonomy)
        empty = [k for k, v in counts.items() if v == 0]
        if empty:
            raise ConflictError(
                f"set the taxonomy first: {', '.join(empty)} {'is' if len(empty) == 1 else 'are'} empty",
                {"empty": empty},
            )

    def _audit_planned(
        self, tenant_id: str, actor: str, conversations: list[Conversation], via: str
    ) -> None:
        """One ``conversation.plan`` record per conversation: its audit history starts
        where it was planned (the dataset's own record holds the totals)."""
        self.audit.record_many(
            [
                self.audit.build(
                    tenant_id,
                    actor,
                    "conversation.plan",
                    "conversation",
                    c.conversation_id,
                    after=snapshot(c),
                    dataset_id=c.dataset_id,
                    via=via,
                )
                for c in conversations
            ]
        )

    def _check_generatable(
        self,
        tenant_id: str,
        dataset: Dataset,
        conversations: list[Conversation],
        chunks: list[Chunk],
    ) -> dict[str, Any]:
        """Refuse a plan holding a conversation no active template can be generated
        from (nothing is written); otherwise say how scenario conversations without a
        document excerpt will be written."""
        if self.templates is None:
            return {}
        templates = self.templates.active_for_generation(tenant_id)
        by_id = {c.chunk_id: c for c in chunks}
        blocked = generation_blockers(templates, conversations, dataset, by_id)
        if blocked:
            raise ConflictError(
                "the plan would hold conversations that cannot be generated: "
                + "; ".join(f"{b['count']} {b['tier']} ({b['reason']})" for b in blocked)
                + ". Activate a template for them (or import document chunks), then plan again",
                {"blocked": blocked},
            )
        bare = [c for c in conversations if c.tier == Tier.SCENARIO and not c.chunk_id]
        if not bare:
            return {"scenario_without_excerpt": 0, "notes": []}
        names = [t.name for t in excerpt_free_templates(templates)]
        why = (
            "this dataset has no document chunks"
            if not chunks
            else "no document chunk matches their dimensions"
        )
        return {
            "scenario_without_excerpt": len(bare),
            "excerpt_free_templates": names,
            "notes": [
                f"{len(bare)} scenario conversation{'s were' if len(bare) != 1 else ' was'} "
                f"planned without a document excerpt because {why}: "
                f"{'they are' if len(bare) != 1 else 'it is'} written from the taxonomy's "
                f"persona, topic and intent descriptions with "
                f"{' / '.join(repr(n) for n in names) or 'an excerpt-free template'}. "
                "Import chunks before generating to ground them in your documents: "
                "each one then picks a matching chunk when it is generated."
            ],
        }

    def plan(
        self, tenant_id: str, actor: str, dataset_id: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        dataset = self._writable(tenant_id, dataset_id)
        self._require_taxonomy(dataset)
        count = data.get("count") or dataset.target_count
        distribution = dataset.tier_distribution
        if data.get("tier_distribution") is not None:
            distribution = TierDistribution.model_validate(data["tier_distribution"])
        seed = data.get("seed", dataset.plan_seed)
        existing = self.conversations.list_for_dataset(tenant_id, dataset_id)
        if existing and not data.get("replace", False):
            raise ConflictError(
                f"this dataset already has {len(existing)} planned conversations; "
                "use fill-gaps to add what is missing, or send replace: true to plan again "
                "(only not-generated conversations are replaced)",
                {"existing": len(existing)},
            )
        chunks = self.datasets.list_chunks(tenant_id, dataset_id)
        specs = plan_conversations(dataset.taxonomy, chunks, count, distribution, seed)
        conversations = [Conversation.from_spec(tenant_id, dataset_id, s) for s in specs]
        generatable = self._check_generatable(tenant_id, dataset, conversations, chunks)
        if data.get("replace"):
            for c in existing:
                if c.status == ConversationStatus.NOT_GENERATED:
                    self.conversations.soft_delete(c)
        self.conversations.add_planned(conversations)
        self._audit_planned(tenant_id, actor, conversations, "plan")
        if data.get("tier_distribution") is not None or count != dataset.target_count:
            self.datasets.save(
                dataset.model_copy(
                    update={"tier_distribution": distribution, "target_count": count}
                ),
                dataset.version,
            )
        tiers: dict[str, int] = {}
        for c in conversations:
            tiers[c.tier.value] = tiers.get(c.tier.value, 0) + 1
        self.audit.record(
            tenant_id,
            actor,
            "dataset.plan",
            "dataset",
            dataset_id,
            after={
                "planned": len(conversations),
                "tiers": tiers,
                "seed": seed,
                "scenario_without_excerpt": generatable.get("scenario_without_excerpt", 0),
            },
        )
        return {
            "planned": len(conversations),
            "tiers": tiers,
            "pair_coverage": pair_coverage(specs, dataset.taxonomy),
            "conversation_ids": [c.conversation_id for c in conversations],
            **generatable,
        }

    def coverage(self, tenant_id: str, dataset_id: str, query: Any = None) -> dict[str, Any]:
        """Coverage of the dataset, or of the conversations a list query (``ListQuery``:
        the list's filters, quality range, flagged and text search) selects."""
        if query is not None:
            self.index.validate(query)
        dataset = self.datasets.get(tenant_id, dataset_id)
        applied = applied_filters(query)
        if not applied:
            conversations = self.index.conversations(tenant_id, dataset_id)
            result = analyze_coverage(
                dataset.taxonomy, conversations, dataset.target_count, dataset.tier_distribution
            )
            return {**result, "filters": {}, "filtered": False}
        conversations = self.index.ordered(tenant_id, [dataset_id], query)
        taxonomy, target, distribution = scope_for_filters(
            dataset.taxonomy, dataset.target_count, dataset.tier_distribution, query.filters
        )
        result = analyze_coverage(taxonomy, conversations, target, distribution)
        return {
            **result,
            "filters": applied,
            "filtered": True,
            "dataset_target_count": dataset.target_count,
        }

    def fill_gaps(
        self,
        tenant_id: str,
        actor: str,
        dataset_id: str,
        gap: dict[str, str] | None = None,
        count: int | None = None,
    ) -> dict[str, Any]:
        """Plan what closes every gap, or (``gap``) ``count`` conversations for one."""
        dataset = self._writable(tenant_id, dataset_id)
        self._require_taxonomy(dataset)
        conversations = self.index.conversations(tenant_id, dataset_id)
        chunks = self.datasets.list_chunks(tenant_id, dataset_id)
        if gap is not None:
            specs = plan_for_gap(
                dataset.taxonomy, chunks, conversations, gap, count or 1, dataset.plan_seed
            )
        else:
            specs = plan_gap_fill(
                dataset.taxonomy,
                chunks,
                conversations,
                dataset.target_count,
                dataset.tier_distribution,
                dataset.plan_seed,
            )
        new = [Conversation.from_spec(tenant_id, dataset_id, s) for s in specs]
        generatable = self._check_generatable(tenant_id, dataset, new, chunks)
        self.conversations.add_planned(new)
        self._audit_planned(tenant_id, actor, new, "fill_gaps")
        tiers: dict[str, int] = {}
        for c in new:
            tiers[c.tier.value] = tiers.get(c.tier.value, 0) + 1
        self.audit.record(
            tenant_id,
            actor,
            "dataset.fill_gaps",
            "dataset",
            dataset_id,
            after={"planned": len(new), "tiers": tiers},
            **({"gap": gap} if gap is not None else {}),
        )
        return {
            "planned": len(new),
            "tiers": tiers,
            "conversation_ids": [c.conversation_id for c in new],
            **generatable,
        }


def applied_filters(query: Any) -> dict[str, Any]:
    """What of a list query selects conversations, as the response states it."""
    if query is None:
        return {}
    out: dict[str, Any] = {k: sorted(set(v)) for k, v in sorted(query.filters.items()) if v}
    for name in ("quality_min", "quality_max", "flagged", "q"):
        value = getattr(query, name)
        if value is not None and value != "":
            out[name] = value
    return out


def _taxonomy_counts(t: Taxonomy) -> dict[str, int]:
    return {k: len(getattr(t, k)) for k in ("personas", "emotions", "topics", "intents", "tones")}
