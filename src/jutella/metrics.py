"""Prometheus metrics of one process (each Runtime has its own registry, so
tests can run several servers in one process). Nothing personal is ever a
label: only kinds, authors and states."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.connections = Gauge("jutella_connections", "Open WebSocket connections", ["kind"], registry=r)
        self.messages_in = Counter("jutella_messages_in_total", "Chat messages received and stored",
                                   ["author"], registry=r)
        self.frames_out = Counter("jutella_frames_out_total", "Frames sent to clients", ["kind"], registry=r)
        self.message_seconds = Histogram("jutella_message_seconds",
                                         "From a message frame's arrival to its ack (commit included)",
                                         buckets=LATENCY_BUCKETS, registry=r)
        self.commit_seconds = Histogram("jutella_commit_seconds", "Duration of a message's transaction",
                                        buckets=LATENCY_BUCKETS, registry=r)
        self.outbox_depth = Gauge("jutella_outbox_depth", "Mails waiting to be sent", registry=r)
        self.redis_up = Gauge("jutella_redis_up", "1 when the Redis hub is connected (or not used)", registry=r)
        self.redis_up.set(1)
        # 1 in the one process that runs the cluster's once-per-cluster work (store/leader.py)
        self.housekeeper = Gauge("jutella_housekeeper", "1 while this process is the cluster's housekeeper",
                                 registry=r)
        # slow clients (realtime/slowclients.py): connections still waiting for their request
        # headers (a function gauge, set in app.py), and those let go: "late" missed the header
        # deadline, "refused" came from an address already at its cap
        self.waiting_connections = Gauge("jutella_waiting_connections",
                                         "Connections whose request headers have not all arrived", registry=r)
        self.slow_clients = Counter("jutella_slow_clients_total", "Connections let go for being slow",
                                    ["outcome"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
