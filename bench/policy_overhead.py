"""What policy and auditing cost per call, measured against the same gateway without them in one run.

Two `toolgate serve` gateways in front of the same echo server (over stdio):
  (p) allow-all policy, audit log off
  (q) a 100-rule policy (the call is decided by a tool-glob rule after 99 others are considered),
      audit log on (a decision committed before forwarding, an outcome after)
sequential calls, alternating between the two in rounds. Target: (q) median - (p) median <= 0.3 ms.

    .venv/bin/python bench/policy_overhead.py [--calls 2000]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gateway_overhead import http_factory, interleaved, row, toolgate_serve, wait_for_tools

from tests.fakes.launch import fake_command

TARGET_MS = 0.3


def hundred_rules() -> dict[str, object]:
    """99 rules that do not decide the echo call, of every rank, then the one that does."""
    rules: list[dict[str, str]] = []
    for i in range(33):
        rules.append({"match": f"echo/other_{i:02d}", "effect": "deny"})
        rules.append({"match": f"*/write_{i:02d}*", "effect": "ask"})
        rules.append({"match": f"server{i:02d}/*", "effect": "deny"})
    rules.append({"match": "echo/ec*", "effect": "allow"})
    return {"default": "deny", "rules": rules}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000, help="timed calls per gateway")
    calls = parser.parse_args().calls
    command, args = fake_command()
    servers = {"echo": {"command": command, "args": args, "prefix": ""}}
    print(f"policy and audit overhead, {calls} sequential echo calls per gateway")
    variants = {
        "p": ("(p) allow-all policy, no audit", None, False),
        "q": ("(q) 100-rule policy, audit on", hundred_rules(), True),
        "r": ("(r) 100-rule policy only", hundred_rules(), False),
        "s": ("(s) audit only", None, True),
    }
    with contextlib.ExitStack() as stack:
        paths = {}
        for key, (name, policy, audit) in variants.items():
            home = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            url, token = stack.enter_context(toolgate_serve(home, servers, policy=policy, audit=audit))
            paths[key] = (name, http_factory(url, "legacy", token))
        if True:
            for _name, factory in paths.values():
                await wait_for_tools(factory, 1)
            measured = await interleaved(paths, 1, calls)
    for key, (name, _factory) in paths.items():
        print(row(name, measured[key]))
    added = measured["q"]["median_ms"] - measured["p"]["median_ms"]
    verdict = "OK" if added <= TARGET_MS else "MISSED"
    print(f"target: (q) - (p) median {added:+.3f} ms (target <= {TARGET_MS} ms) {verdict}")
    for key in ("r", "s"):
        print(f"  {variants[key][0]}: {measured[key]['median_ms'] - measured['p']['median_ms']:+.3f} ms over (p)")


if __name__ == "__main__":
    anyio.run(main)
