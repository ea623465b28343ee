"""The running application's services, built once by the application factory
and handed to actions explicitly (no module-level globals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jutella.accounts.throttle import MemoryThrottle
from jutella.chat.presence import Presence
from jutella.clock import Clock
from jutella.metrics import Metrics
from jutella.realtime.hub import MemoryHub
from jutella.settings import Settings
from jutella.store.db import Database


@dataclass
class Runtime:
    settings: Settings
    db: Database
    clock: Clock
    hub: MemoryHub
    throttle: MemoryThrottle = field(default=None)  # type: ignore[assignment]
    presence: Presence = field(default=None)  # type: ignore[assignment]
    outbox: Any = None  # mail.outbox.OutboxWorker, started by the application's lifespan
    metrics: Metrics = field(default_factory=Metrics)

    def __post_init__(self) -> None:
        if self.throttle is None:
            self.throttle = MemoryThrottle(lambda: self.clock.now().timestamp())
        if self.presence is None:
            self.presence = Presence(self.clock)

    @classmethod
    def build(cls, settings: Settings, clock: Clock | None = None) -> "Runtime":
        clock = clock or Clock()
        hub: MemoryHub = MemoryHub()
        db = Database(settings.sqlalchemy_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms,
                      connect_timeout=settings.database_timeout_seconds)
        rt = cls(settings=settings, db=db, clock=clock, hub=hub)
        if settings.redis_url:
            from jutella.realtime.redis_hub import RedisHub, connect_presence

            rt.hub = RedisHub(settings.redis_url, settings.redis_prefix)
            connect_presence(rt.hub, rt.presence)
        return rt
