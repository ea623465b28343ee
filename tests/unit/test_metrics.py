"""The per-message metrics are plain numbers (jutella/metrics.py); what
``/metrics`` shows of them is what prometheus_client's own Counter and
Histogram show for the same counts, line for line."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from jutella.metrics import LATENCY_BUCKETS, Metrics

OBSERVED = [0.0, 0.0004, 0.001, 0.0011, 0.0025, 0.003, 0.005, 0.25, 1.0, 2.5, 2.6, 40.0]


def _created(text: str) -> str:
    return re.sub(r"(_created(\{[^}]*\})?) \S+", r"\1 T", text)


def test_the_hot_metrics_render_as_prometheus_client_renders_them():
    ours = Metrics()
    ours.messages_in.labels("visitor").inc()
    ours.messages_in.labels("visitor").inc()
    ours.messages_in.labels("agent").inc()
    ours.frames_out.labels("visitor").inc(3)
    ours.frames_out.labels("agent").inc(0)
    for seconds in OBSERVED:
        ours.message_seconds.observe(seconds)
    ours.commit_seconds.observe(0.002)

    r = CollectorRegistry(auto_describe=True)
    messages_in = Counter("jutella_messages_in_total", "Chat messages received and stored", ["author"], registry=r)
    frames_out = Counter("jutella_frames_out_total", "Frames sent to clients", ["kind"], registry=r)
    message_seconds = Histogram("jutella_message_seconds",
                                "From a message frame's arrival to its ack (commit included)",
                                buckets=LATENCY_BUCKETS, registry=r)
    commit_seconds = Histogram("jutella_commit_seconds", "Duration of a message's transaction",
                               buckets=LATENCY_BUCKETS, registry=r)
    messages_in.labels("visitor").inc()
    messages_in.labels("visitor").inc()
    messages_in.labels("agent").inc()
    frames_out.labels("visitor").inc(3)
    frames_out.labels("agent").inc(0)
    for seconds in OBSERVED:
        message_seconds.observe(seconds)
    commit_seconds.observe(0.002)
    theirs = _created(generate_latest(r).decode())

    text = _created(ours.render().decode())
    assert theirs in text  # the same lines, in the same order, between the gauges around them
    assert 'jutella_message_seconds_bucket{le="0.001"} 3.0' in text  # 0, 0.0004 and 0.001 itself: le
    assert 'jutella_message_seconds_bucket{le="2.5"} 10.0' in text
    assert 'jutella_message_seconds_bucket{le="+Inf"} 12.0' in text
    assert 'jutella_messages_in_total{author="visitor"} 2.0' in text
    assert re.search(r'jutella_frames_out_created\{kind="visitor"\} 1\.\d+e\+09', ours.render().decode())
