"""/metrics: counters and the latency histogram, rendered as Prometheus text."""

from __future__ import annotations

from gateway_core.downstream.base import ServerState, ServerStatus
from gateway_core.frontend.metrics import LATENCY_BUCKETS, Metrics


def samples(text: str) -> dict[str, float]:
    """Every sample line of a Prometheus text exposition: ``name{labels}`` → value."""
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            found[key] = float(value)
    return found


def test_requests_and_calls_are_counted_by_their_labels():
    metrics = Metrics()
    metrics.count_request("cursor", 200)
    metrics.count_request("cursor", 200)
    metrics.count_request("-", 401)
    metrics.count_call("cursor", "fs", "ok", 0.002)
    metrics.count_call("cursor", "fs", "timeout", 0.0)

    found = samples(metrics.render([]))

    assert found['toolgate_http_requests_total{agent="cursor",status="200"}'] == 2
    assert found['toolgate_http_requests_total{agent="-",status="401"}'] == 1
    assert found['toolgate_tool_calls_total{agent="cursor",server="fs",outcome="ok"}'] == 1
    assert found['toolgate_tool_calls_total{agent="cursor",server="fs",outcome="timeout"}'] == 1


def test_the_latency_histogram_is_cumulative_and_ends_with_every_call():
    metrics = Metrics()
    slowest = LATENCY_BUCKETS[-1] * 10
    for seconds in (LATENCY_BUCKETS[0] / 2, LATENCY_BUCKETS[0] / 2, LATENCY_BUCKETS[1], slowest):
        metrics.count_call("cursor", "fs", "ok", seconds)

    found = samples(metrics.render([]))
    buckets = [found[f'toolgate_tool_call_seconds_bucket{{server="fs",le="{bound}"}}'] for bound in LATENCY_BUCKETS]

    assert buckets[0] == 2 and buckets[1] == 3 and buckets[-1] == 3
    assert buckets == sorted(buckets)
    assert found['toolgate_tool_call_seconds_bucket{server="fs",le="+Inf"}'] == 4
    assert found['toolgate_tool_call_seconds_count{server="fs"}'] == 4
    assert (
        abs(found['toolgate_tool_call_seconds_sum{server="fs"}'] - (LATENCY_BUCKETS[0] + LATENCY_BUCKETS[1] + slowest))
        < 1e-6
    )


def test_each_server_has_exactly_one_state_and_the_audit_health_is_shown_when_known():
    statuses = [ServerStatus("fs", ServerState.READY, "stdio"), ServerStatus("gh", ServerState.FAILED, "http")]

    found = samples(Metrics().render(statuses, audit_healthy=False))
    without_audit = Metrics().render(statuses)

    assert found['toolgate_server_state{server="fs",state="ready"}'] == 1
    assert sum(v for k, v in found.items() if k.startswith('toolgate_server_state{server="gh"')) == 1
    assert found["toolgate_audit_healthy"] == 0
    assert "toolgate_audit_healthy" not in without_audit


def test_label_values_are_escaped_so_no_value_can_add_a_line():
    metrics = Metrics()
    metrics.count_call('a"b', "x\ny", "ok", 0.0)

    text = metrics.render([])

    assert 'agent="a\\"b",server="x\\ny"' in text
    assert all(line.startswith(("#", "toolgate_")) for line in text.splitlines())
