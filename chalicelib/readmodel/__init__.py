"""The system-wide read model: the per-dataset conversation list index and its filters."""
