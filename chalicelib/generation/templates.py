"""Prompt template management: versions, activation, A/B weights, usage statistics."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from chalicelib.audit.log import AuditLog
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.models import (
    Conversation,
    ConversationStatus,
    PromptTemplate,
    TemplateVersion,
    Tier,
    template_name_key,
    utcnow,
)
from chalicelib.domain.ports import TemplateStore
from chalicelib.generation.prompts import validate_template_text
from chalicelib.planning.seed_templates import SEED_TEMPLATES

TEMPLATE_CACHE_SECONDS = 5.0


def _seed_field(seed: Any, name: str, default: Any = None) -> Any:
    return seed.get(name, default) if isinstance(seed, dict) else getattr(seed, name, default)


def _clean_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise ValidationError("a template needs a name", {"field": "name"})
    return cleaned


class TemplateService:
    def __init__(
        self,
        repository: TemplateStore,
        audit: AuditLog,
        tenant_conversations: Callable[[str], list[Conversation]] | None = None,
    ) -> None:
        self.repo = repository
        self.audit = audit
        # every conversation of a tenant (the list index), for a template's usage figures
        self.tenant_conversations = tenant_conversations
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, list[PromptTemplate]]] = {}

    def ensure_seeded(self, tenant_id: str) -> list[PromptTemplate]:
        """The tenant's templates; seeds it has not got yet are created first (a new
        tenant gets all of them, an existing one the seeds added since it was seeded)."""
        existing = self.repo.list_all(tenant_id)
        if not self._missing_seeds(existing):
            return existing
        with self._lock:
            existing = self.repo.list_all(tenant_id)
            missing = self._missing_seeds(existing)
            for i, seed in missing:
                template = PromptTemplate(
                    tenant_id=tenant_id,
                    template_id=f"tpl_seed_{i}",
                    name=_seed_field(seed, "name"),
                    tier=Tier(_seed_field(seed, "tier")),
                    text=_seed_field(seed, "text"),
                    description=_seed_field(seed, "description", ""),
                    weight=float(_seed_field(seed, "weight", 1.0)),
                    parameters=validate_template_text(_seed_field(seed, "text")),
                    created_by="system",
                )
                try:
                    self.repo.create(template, self._version_of(template, "seeded"))
                except Exception:
                    continue
            return self.repo.list_all(tenant_id) if missing else existing

    @staticmethod
    def _missing_seeds(existing: list[PromptTemplate]) -> list[tuple[int, Any]]:
        have = {t.template_id for t in existing}
        names = {t.name for t in existing}
        return [
            (i, seed)
            for i, seed in enumerate(SEED_TEMPLATES, start=1)
            if f"tpl_seed_{i}" not in have and _seed_field(seed, "name") not in names
        ]

    def active_for_generation(self, tenant_id: str) -> list[PromptTemplate]:
        """Active templates, cached a few seconds per container (read on every item)."""
        now = time.monotonic()
        cached = self._cache.get(tenant_id)
        if cached and now - cached[0] < TEMPLATE_CACHE_SECONDS:
            return cached[1]
        templates = [t for t in self.ensure_seeded(tenant_id) if t.is_active]
        self._cache[tenant_id] = (now, templates)
        return templates

    @staticmethod
    def _version_of(template: PromptTemplate, note: str) -> TemplateVersion:
        return TemplateVersion(
            template_id=template.template_id,
            version=template.version,
            text=template.text,
            parameters=template.parameters,
            change_note=note,
            created_by=template.created_by,
        )

    def _reserve_legacy_names(self, tenant_id: str, name: str, exclude: str = "") -> None:
        """Templates stored before names were reserved hold their name too: reserve it
        for them first, so the conditional write of a new holder fails (409)."""
        key = template_name_key(name)
        for existing in self.ensure_seeded(tenant_id):
            if existing.template_id != exclude and template_name_key(existing.name) == key:
                self.repo.reserve_name(existing)

    def list_all(self, tenant_id: str) -> list[PromptTemplate]:
        return sorted(self.ensure_seeded(tenant_id), key=lambda t: (t.tier.value, t.name))

    def get(self, tenant_id: str, template_id: str) -> PromptTemplate:
        self.ensure_seeded(tenant_id)
        return self.repo.get(tenant_id, template_id)

    def versions(self, tenant_id: str, template_id: str) -> list[TemplateVersion]:
        return self.repo.versions(tenant_id, template_id)

    def create(self, tenant_id: str, actor: str, data: dict[str, Any]) -> PromptTemplate:
        parameters = validate_template_text(data["text"])
        template = PromptTemplate(
            tenant_id=tenant_id,
            name=_clean_name(data["name"]),
            tier=Tier(data["tier"]),
            text=data["text"],
            description=data.get("description") or "",
            parameters=parameters,
            is_active=data.get("is_active", True),
            weight=data.get("weight", 1.0),
            applicable_personas=data.get("applicable_personas"),
            applicable_emotions=data.get("applicable_emotions"),
            created_by=actor,
        )
        self._reserve_legacy_names(tenant_id, template.name)
        self.repo.create(template, self._version_of(template, data.get("change_note") or "created"))
        self._cache.pop(tenant_id, None)
        self.audit.record(
            tenant_id,
            actor,
            "template.create",
            "template",
            template.template_id,
            after=template.model_dump(mode="json", exclude={"text"}),
        )
        return template

    def update(
        self, tenant_id: str, actor: str, template_id: str, changes: dict[str, Any]
    ) -> PromptTemplate:
        current = self.repo.get(tenant_id, template_id)
        if (
            changes.get("expected_version") is not None
            and changes["expected_version"] != current.version
        ):
            from chalicelib.domain.errors import StaleVersionError

            raise StaleVersionError(
                "the template was changed by someone else",
                {"current": current.model_dump(mode="json")},
            )
        update: dict[str, Any] = {"updated_at": utcnow()}
        new_version = None
        if "text" in changes and changes["text"] is not None and changes["text"] != current.text:
            update["parameters"] = validate_template_text(changes["text"])
            update["text"] = changes["text"]
            update["version"] = current.version + 1
        for field in (
            "name",
            "description",
            "is_active",
            "weight",
            "applicable_personas",
            "applicable_emotions",
        ):
            if field in changes and changes[field] is not None:
                update[field] = changes[field]
        if "name" in update:
            update["name"] = _clean_name(update["name"])
        if "weight" in update and update["weight"] < 0:
            raise ValidationError("weight must be >= 0")
        updated = current.model_copy(update=update)
        if "text" in update:
            new_version = self._version_of(updated, changes.get("change_note") or "edited")
            new_version.created_by = actor
        renamed = "name" in update and update["name"] != current.name
        if renamed:
            self._reserve_legacy_names(tenant_id, update["name"], exclude=template_id)
        self.repo.save(
            updated, current.version, new_version, previous_name=current.name if renamed else None
        )
        self._cache.pop(tenant_id, None)
        self.audit.record(
            tenant_id,
            actor,
            "template.update",
            "template",
            template_id,
            before={k: current.model_dump(mode="json").get(k) for k in update if k != "updated_at"},
            after={k: updated.model_dump(mode="json").get(k) for k in update if k != "updated_at"},
        )
        return updated

    def detail(
        self, tenant_id: str, template_id: str
    ) -> tuple[PromptTemplate, list[TemplateVersion], list[dict[str, Any]]]:
        """The template, its versions, and per version how it did (usage, quality,
        approvals) across the tenant's conversations."""
        template = self.get(tenant_id, template_id)
        conversations = self.tenant_conversations(tenant_id) if self.tenant_conversations else []
        usage = self.usage_stats(template_id, conversations)
        return template, self.versions(tenant_id, template_id), usage

    @staticmethod
    def usage_stats(
        template_id: str, conversations: Iterable[Conversation]
    ) -> list[dict[str, Any]]:
        """Per version: usage, mean quality, approval rate."""
        per: dict[int, dict[str, Any]] = {}
        for c in conversations:
            if c.template_id != template_id or c.template_version is None:
                continue
            row = per.setdefault(
                c.template_version,
                {
                    "version": c.template_version,
                    "usage": 0,
                    "scores": [],
                    "approved": 0,
                    "rejected": 0,
                },
            )
            row["usage"] += 1
            if c.quality_score is not None:
                row["scores"].append(c.quality_score)
            if c.status == ConversationStatus.APPROVED:
                row["approved"] += 1
            elif c.status == ConversationStatus.REJECTED:
                row["rejected"] += 1
        out = []
        for v in sorted(per):
            row = per[v]
            scores = row.pop("scores")
            reviewed = row["approved"] + row["rejected"]
            row["mean_quality"] = round(sum(scores) / len(scores), 2) if scores else None
            row["approval_rate"] = round(row["approved"] / reviewed, 3) if reviewed else None
            out.append(row)
        return out
