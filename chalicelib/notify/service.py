"""Email subscriptions and the stored notification messages, as the API offers them."""

from __future__ import annotations

from typing import Any, Protocol

from chalicelib.domain.models import NotificationMessage
from chalicelib.domain.ports import AuditTrail
from chalicelib.notify.sns import Notifier


class NotificationStore(Protocol):
    def add_subscription(
        self, tenant_id: str, email: str, subscription_arn: str | None
    ) -> dict[str, Any]: ...

    def subscriptions(self, tenant_id: str) -> list[dict[str, Any]]: ...

    def messages(self, tenant_id: str, limit: int = 50) -> list[NotificationMessage]: ...


class NotificationService:
    def __init__(self, notifier: Notifier, store: NotificationStore, audit: AuditTrail) -> None:
        self.notifier = notifier
        self.store = store
        self.audit = audit

    def subscribe(self, tenant_id: str, actor: str, email: str) -> dict[str, Any]:
        """Subscribe ``email`` to the tenant's job and export notices (SNS filters by
        tenant), keep the subscription, and audit who added it."""
        arn = self.notifier.subscribe(tenant_id, email)
        doc = self.store.add_subscription(tenant_id, email, arn)
        self.audit.record(tenant_id, actor, "notification.subscribe", "subscription", email.lower())
        return doc

    def subscriptions(self, tenant_id: str) -> list[dict[str, Any]]:
        return self.store.subscriptions(tenant_id)

    def messages(self, tenant_id: str) -> list[NotificationMessage]:
        return self.store.messages(tenant_id)
