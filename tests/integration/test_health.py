def test_healthz_answers_when_the_database_does(live):
    r = live.client().get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_every_response_has_the_security_headers(live):
    r = live.client().get("/console")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    r = live.client().get("/api/v1/me")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in r.headers["content-security-policy"]


def test_metrics_count_connections_and_messages(live):
    from tests.chat_clients import visitor

    v, _ = visitor(live)
    v.message("hello")
    v.until(lambda f: f["type"] == "ack")
    text = live.client().get("/metrics").text
    assert 'jutella_connections{kind="visitor"} 1.0' in text
    assert 'jutella_messages_in_total{author="visitor"} 1.0' in text
    assert "jutella_message_seconds_count 1.0" in text
    assert "jutella_redis_up 1.0" in text
    assert "hello" not in text
