"""Prometheus metrics of one process (each Runtime has its own registry, so
tests can run several servers in one process). Nothing personal is ever a
label: only kinds, authors and states.

The four metrics counted on every chat message (messages in, frames out and
the two latency histograms) are plain Python numbers, turned into
Prometheus families only when ``/metrics`` is read (:class:`_Hot`):
prometheus_client's own Counter takes a lock and checks its arguments on
each ``inc`` (1 us), its Histogram walks the buckets and takes three locks
on each ``observe`` (3 us), 2% of a worker's CPU per message
(docs/performance.md). They are only touched on the event loop's thread.
The text ``/metrics`` shows is the same, line for line
(tests/unit/test_metrics.py)."""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class CounterChild:
    """One labelled series of a :class:`HotCounter`."""

    __slots__ = ("value", "created")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time.time()

    def inc(self, amount: float = 1) -> None:
        self.value += amount


class HotCounter:
    """A counter with labels, as prometheus_client's ``Counter(...).labels(...)``
    is used here: ``labels(value).inc(n)``."""

    def __init__(self, name: str, documentation: str, label: str):
        self.name = name
        self.documentation = documentation
        self.label = label
        self._children: dict[str, CounterChild] = {}

    def labels(self, value: str) -> CounterChild:
        child = self._children.get(value)
        if child is None:
            child = self._children[value] = CounterChild()
        return child

    def family(self) -> Metric:
        family = CounterMetricFamily(self.name, self.documentation, labels=[self.label])
        for value, child in self._children.items():
            family.add_metric([value], child.value, created=child.created)
        return family


class HotHistogram:
    """A histogram without labels: ``observe(seconds)``. A value equal to a
    bound counts in that bound's bucket, as Prometheus's ``le`` says."""

    def __init__(self, name: str, documentation: str, buckets: tuple[float, ...]):
        self.name = name
        self.documentation = documentation
        self.bounds = tuple(float(b) for b in buckets)
        self.counts = [0] * (len(self.bounds) + 1)  # the last: above every bound (+Inf only)
        self.sum = 0.0
        self.created = time.time()

    def observe(self, amount: float) -> None:
        self.sum += amount
        self.counts[bisect_left(self.bounds, amount)] += 1

    def family(self) -> Metric:
        family = HistogramMetricFamily(self.name, self.documentation, labels=[])
        cumulative, buckets = 0, []
        for bound, count in zip((*self.bounds, float("inf")), self.counts):
            cumulative += count
            buckets.append((floatToGoString(bound), float(cumulative)))
        family.add_metric([], buckets, self.sum)
        family.samples.append(Sample(self.name + "_created", {}, self.created))
        return family


class _Hot:
    """The registry's collector for the hot metrics, in the order they are listed."""

    def __init__(self, *metrics: HotCounter | HotHistogram):
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        for metric in self.metrics:
            yield metric.family()

    def describe(self) -> list[Metric]:
        return [metric.family() for metric in self.metrics]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.connections = Gauge("jutella_connections", "Open WebSocket connections", ["kind"], registry=r)
        self.messages_in = HotCounter("jutella_messages_in", "Chat messages received and stored", "author")
        self.frames_out = HotCounter("jutella_frames_out", "Frames sent to clients", "kind")
        self.message_seconds = HotHistogram("jutella_message_seconds",
                                            "From a message frame's arrival to its ack (commit included)",
                                            LATENCY_BUCKETS)
        self.commit_seconds = HotHistogram("jutella_commit_seconds", "Duration of a message's transaction",
                                           LATENCY_BUCKETS)
        r.register(_Hot(self.messages_in, self.frames_out, self.message_seconds, self.commit_seconds))
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
