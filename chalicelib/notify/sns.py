"""Notifications: SNS for email subscribers (filtered by tenant), plus a stored copy
that the API and UI show (and the local stack logs)."""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

from chalicelib.domain.models import NotificationMessage

log = logging.getLogger(__name__)


class NotificationRepository(Protocol):
    def add_message(self, message: NotificationMessage) -> None: ...


class Notifier:
    def __init__(self, sns: Any, topic_arn: str | None, repository: NotificationRepository) -> None:
        self._sns = sns
        self._topic_arn = topic_arn
        self._repo = repository

    def store(self, message: NotificationMessage) -> None:
        self._repo.add_message(message)
        log.warning("NOTIFICATION [%s] %s\n%s", message.tenant_id, message.subject, message.body)

    def publish(self, message: NotificationMessage) -> None:
        """Store and send through SNS (the workflow's own SNS task sends completions)."""
        self.store(message)
        if not self._topic_arn:
            return
        self._sns.publish(
            TopicArn=self._topic_arn,
            Subject=message.subject[:100],
            Message=message.body,
            MessageAttributes={
                "tenant_id": {"DataType": "String", "StringValue": message.tenant_id},
                "kind": {"DataType": "String", "StringValue": message.kind},
            },
        )

    def subscribe(self, tenant_id: str, email: str) -> str | None:
        if not self._topic_arn:
            return None
        response = self._sns.subscribe(
            TopicArn=self._topic_arn,
            Protocol="email",
            Endpoint=email,
            # Each tenant's subscribers only receive that tenant's messages.
            Attributes={"FilterPolicy": json.dumps({"tenant_id": [tenant_id]})},
            ReturnSubscriptionArn=True,
        )
        return str(response.get("SubscriptionArn"))
