"""The durable store: inbox of raw inputs, outbox of converted resources, dead letters, sync runs."""

from adapter.store.db import STORE_FILE, Store, open_store, store_path
from adapter.store.records import Batch, DeadLetter, InboxItem, NewMessage, OutboxRow, StoreCounts, SyncRun

__all__ = [
    "STORE_FILE",
    "Batch",
    "DeadLetter",
    "InboxItem",
    "NewMessage",
    "OutboxRow",
    "Store",
    "StoreCounts",
    "SyncRun",
    "open_store",
    "store_path",
]
