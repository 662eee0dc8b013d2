"""The audit trail, shared by every service that changes data (design rule 7)."""
