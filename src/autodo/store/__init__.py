"""The domain store: tasks, profiles, runs, events and inbox items."""

from autodo.store.db import now, open_store, seconds_since

__all__ = ["now", "open_store", "seconds_since"]
