"""Notifications: SNS email per tenant plus a stored copy shown in the UI."""
