"""The concrete services of a Runtime (the database, the hub, the sign-in
throttle, presence), built from the settings. It sits above the subsystems
whose classes it instantiates, so runtime.py, below them, need import none;
the application factory, the command line and the benchmark call it."""

from __future__ import annotations

from jutella.accounts.audit_anchor import AuditAnchor
from jutella.accounts.throttle import MemoryThrottle, shared_secret
from jutella.chat.presence import Presence
from jutella.clock import Clock
from jutella.cpu import CpuPools, Pool
from jutella.realtime.hub import MemoryHub
from jutella.runtime import Runtime
from jutella.settings import Settings
from jutella.store.db import Database
from jutella.store.files import DatabaseFileStore, FileStore
from jutella.store.leader import Housekeeper


def build_runtime(settings: Settings, clock: Clock | None = None) -> Runtime:
    clock = clock or Clock()
    db = Database(settings.sqlalchemy_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms,
                  connect_timeout=settings.database_timeout_seconds,
                  session_info={"audit": AuditAnchor(settings)}, workers=settings.host_workers)
    presence = Presence(clock)
    # the throttle reads the runtime's clock at each call, as it always has
    rt = Runtime(settings=settings, db=db, clock=clock, hub=MemoryHub(), presence=presence,
                 throttle=MemoryThrottle(lambda: rt.clock.now().timestamp()),
                 cpu=CpuPools(passwords=Pool("passwords", settings.password_workers, settings.password_queue),
                              uploads=Pool("uploads", settings.upload_workers, settings.upload_queue,
                                           processes=True)))
    # the attachments' bytes, one store for every host (docs/attachments.md, "Where the bytes are")
    rt.files = file_store(settings, db, lambda: rt.clock.now())
    # the cluster's one housekeeper (store/leader.py): started and stopped by the application's lifespan
    rt.housekeeper = Housekeeper(settings.sqlalchemy_url, data_dir=settings.data_dir,
                                 connect_timeout=settings.database_timeout_seconds,
                                 on_change=lambda active: rt.metrics.housekeeper.set(1 if active else 0))
    if settings.redis_url:
        # imported only when configured: the Redis client is not needed otherwise
        from jutella.realtime.redis_hub import RedisHub, connect_presence
        from jutella.realtime.redis_throttle import RedisThrottle

        rt.hub = RedisHub(settings.redis_url, settings.redis_prefix)
        connect_presence(rt.hub, rt.presence)
        # one limit for all workers: counters in Redis, keyed with a secret they share
        secret = shared_secret(settings.data_dir,
                               settings.throttle_secret.get_secret_value() if settings.throttle_secret else None)
        rt.throttle = RedisThrottle(settings.redis_url, settings.redis_prefix,
                                    lambda: rt.clock.now().timestamp(), secret)
    return rt


def file_store(settings: Settings, db: Database, now) -> FileStore:
    """The store of the attachments' bytes the settings name (``JUTELLA_FILE_STORE``)."""
    if settings.file_store == "s3":
        try:  # the optional extra jutella[s3]: imported only when configured
            from jutella.store.s3files import S3FileStore
        except ImportError:
            from jutella.settings import SettingsError

            raise SettingsError("setting JUTELLA_FILE_STORE: s3 needs boto3 (pip install 'jutella[s3]')") from None
        secret = settings.s3_secret_access_key
        return S3FileStore(db, bucket=settings.s3_bucket or "", endpoint_url=settings.s3_endpoint_url,
                           region=settings.s3_region, access_key_id=settings.s3_access_key_id,
                           secret_access_key=secret.get_secret_value() if secret else None,
                           prefix=settings.s3_prefix, timeout=settings.s3_timeout_seconds)
    return DatabaseFileStore(db, now)
