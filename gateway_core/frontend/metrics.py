"""Prometheus counters for /metrics: requests and tool calls by agent, server and outcome, and latency.

Nothing here ever records tool arguments, resource contents or secrets; labels are agent ids,
server names, outcomes and HTTP status codes only.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable

from gateway_core.downstream.base import ServerState, ServerStatus

# Tool-call latency buckets in seconds: sub-millisecond gateway hops up to slow remote tools.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """In-memory counters, rendered as Prometheus text on demand."""

    def __init__(self) -> None:
        self._requests: Counter[tuple[str, str]] = Counter()
        self._calls: Counter[tuple[str, str, str]] = Counter()
        self._bucket_counts: dict[str, list[int]] = {}
        self._latency_sum: dict[str, float] = {}
        self._latency_count: Counter[str] = Counter()
        self._hot: Counter[tuple[str, str]] = Counter()
        self._hot_lane = 0

    def count_request(self, agent: str, status: int) -> None:
        """Count one HTTP request to /mcp (``agent`` is ``"-"`` when none was identified)."""
        self._requests[(agent, str(status))] += 1

    def count_call(self, agent: str, server: str, outcome: str, seconds: float) -> None:
        """Count one tool call and its latency; ``outcome`` is e.g. ``ok``, ``tool_error``, ``unavailable``."""
        self._calls[(agent, server, outcome)] += 1
        buckets = self._bucket_counts.get(server)
        if buckets is None:
            buckets = self._bucket_counts[server] = [0] * len(LATENCY_BUCKETS)
        index = bisect.bisect_left(LATENCY_BUCKETS, seconds)
        if index < len(buckets):
            buckets[index] += 1
        self._latency_sum[server] = self._latency_sum.get(server, 0.0) + seconds
        self._latency_count[server] += 1

    def count_hot_call(self, method: str, *, passed_through: bool) -> None:
        """Count one request answered by the hot path: its result passed through as it came, or rebuilt typed."""
        self._hot[(method, "passed_through" if passed_through else "rebuilt")] += 1

    def count_hot_lane(self) -> None:
        """Count one request that took the hot lane to its session's transport (``hot_lane.py``)."""
        self._hot_lane += 1

    def render(self, statuses: Iterable[ServerStatus], *, audit_healthy: bool | None = None) -> str:
        """The Prometheus text exposition of every counter, the server states and the audit log's health."""
        lines = [
            "# HELP toolgate_http_requests_total HTTP requests to /mcp by agent and status code.",
            "# TYPE toolgate_http_requests_total counter",
        ]
        for (agent, status), n in sorted(self._requests.items()):
            lines.append(f'toolgate_http_requests_total{{agent="{_esc(agent)}",status="{status}"}} {n}')
        lines += [
            "# HELP toolgate_tool_calls_total Tool calls by agent, server and outcome.",
            "# TYPE toolgate_tool_calls_total counter",
        ]
        for (agent, server, outcome), n in sorted(self._calls.items()):
            labels = f'agent="{_esc(agent)}",server="{_esc(server)}",outcome="{outcome}"'
            lines.append(f"toolgate_tool_calls_total{{{labels}}} {n}")
        lines += [
            "# HELP toolgate_tool_call_seconds Tool call latency through the gateway, by server.",
            "# TYPE toolgate_tool_call_seconds histogram",
        ]
        for server, buckets in sorted(self._bucket_counts.items()):
            label = f'server="{_esc(server)}"'
            cumulative = 0
            for bound, n in zip(LATENCY_BUCKETS, buckets, strict=True):
                cumulative += n
                lines.append(f'toolgate_tool_call_seconds_bucket{{{label},le="{bound}"}} {cumulative}')
            lines.append(f'toolgate_tool_call_seconds_bucket{{{label},le="+Inf"}} {self._latency_count[server]}')
            lines.append(f"toolgate_tool_call_seconds_sum{{{label}}} {self._latency_sum[server]:.6f}")
            lines.append(f"toolgate_tool_call_seconds_count{{{label}}} {self._latency_count[server]}")
        lines += [
            "# HELP toolgate_hot_path_calls_total Requests the hot path answered, by method and how their result came.",
            "# TYPE toolgate_hot_path_calls_total counter",
        ]
        for (method, result), n in sorted(self._hot.items()):
            lines.append(f'toolgate_hot_path_calls_total{{method="{method}",result="{result}"}} {n}')
        if self._hot_lane:
            lines += [
                "# HELP toolgate_hot_lane_requests_total Requests that went straight to their session (hot lane).",
                "# TYPE toolgate_hot_lane_requests_total counter",
                f"toolgate_hot_lane_requests_total {self._hot_lane}",
            ]
        lines += [
            "# HELP toolgate_server_state 1 for the state each configured server is in.",
            "# TYPE toolgate_server_state gauge",
        ]
        for server_status in sorted(statuses, key=lambda s: s.name):
            for state in ServerState:
                value = 1 if server_status.state is state else 0
                labels = f'server="{_esc(server_status.name)}",state="{state.value}"'
                lines.append(f"toolgate_server_state{{{labels}}} {value}")
        if audit_healthy is not None:
            lines += [
                "# HELP toolgate_audit_healthy 1 while audit records are being written, 0 while writes fail.",
                "# TYPE toolgate_audit_healthy gauge",
                f"toolgate_audit_healthy {int(audit_healthy)}",
            ]
        return "\n".join(lines) + "\n"


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
