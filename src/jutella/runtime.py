"""The running application's services, built once (``build_runtime`` in
jutella/services.py) and handed to actions explicitly (no module-level
globals).

Every subsystem takes a Runtime, so this module sits below them all: it names
the services' classes for the type checker only and imports none of them
when the program runs (the layers contract in pyproject.toml holds it to that)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from jutella.clock import Clock
from jutella.cpu import CpuPools
from jutella.metrics import Metrics
from jutella.settings import Settings

if TYPE_CHECKING:
    from jutella.accounts.throttle import MemoryThrottle
    from jutella.chat.presence import Presence
    from jutella.chat.queue import QueueWatch
    from jutella.mail.outbox import OutboxWorker
    from jutella.mail.webhooks import WebhookWorker
    from jutella.realtime.hub import MemoryHub
    from jutella.store.db import Database
    from jutella.store.files import FileStore
    from jutella.store.leader import Housekeeper


@dataclass
class Runtime:
    settings: Settings
    db: Database
    clock: Clock
    hub: MemoryHub  # or realtime.redis_hub.RedisHub, its subclass
    throttle: MemoryThrottle
    presence: Presence
    outbox: OutboxWorker | None = None  # started by the application's lifespan
    # where the attachments' bytes are (store/files.py): the database unless configured otherwise
    files: FileStore | None = None
    webhooks: WebhookWorker | None = None  # the webhook sender, started next to the outbox (mail/webhooks.py)
    metrics: Metrics = field(default_factory=Metrics)
    # whether this process is the cluster's housekeeper (store/leader.py; started by the lifespan)
    housekeeper: Housekeeper | None = None
    # bounded pools for password hashing and upload decoding, off the event loop (cpu.py)
    cpu: CpuPools = field(default_factory=CpuPools)
    # the queues due to be told to their waiting visitors, and the typical waits (chat/queue.py; made on first use)
    queues: QueueWatch | None = None
    # small per-process caches that expire by time: key -> (monotonic time, value); see chat/sites.py
    caches: dict[str, tuple[float, object]] = field(default_factory=dict)
    # whether anyone was restricted when a message's statement last looked (PostgreSQL): picks which of
    # chat/actions.py's two statements a message offers; a hint, never a decision (the statement checks)
    anyone_restricted: bool = True

    def is_housekeeper(self) -> bool:
        """The one question every once-per-cluster job asks at the start of
        each round (the outbox, retention, idle conversations, webhooks): is
        this process the cluster's housekeeper right now? (docs/housekeeping.md)"""
        return self.housekeeper is not None and self.housekeeper.active
