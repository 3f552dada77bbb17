"""What recording a call in the audit log costs the event loop: this checkout against an earlier commit.

Each run is a fresh process that drives an ``AuditLog`` the way the gateway does for a call — a
decision (awaited before the call would be forwarded), then the outcome — with a 0.5 ms sleep standing
in for the call, ``--calls`` times. Variants, taking turns run by run in one invocation:
  (none)    the same loop without recording anything (the floor)
  (before)  the ``AuditLog`` of the commit given by --before
  (after)   this working tree's
Prints, per variant, the median over runs of the wall time, the process's CPU time and the event
loop thread's CPU time per call, and what the audit adds over (none).

    .venv/bin/python bench/audit_cost.py [--before REF] [--calls 3000] [--runs 5]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from before_after import ROOT, export

_RUN = textwrap.dedent(
    """
    import json, sys, tempfile, time
    sys.path.insert(0, sys.argv[1])
    from pathlib import Path
    import anyio
    from gateway_core.audit import AuditLog

    calls, record = int(sys.argv[2]), sys.argv[3] == "yes"

    async def main() -> None:
        with tempfile.TemporaryDirectory() as folder:
            log = AuditLog(Path(folder) / "audit.sqlite3")
            async with anyio.create_task_group() as tg:
                await tg.start(log.run)
                for i in range(30 + calls):
                    if i == 30:
                        wall, cpu, loop = time.perf_counter(), time.process_time(), time.thread_time()
                    if record:
                        await log.record_decision(
                            call_id=f"c{i}", agent="bench", server="echo", tool="echo", effect="allow",
                            rule="echo/ec* → allow", reason="rule echo/ec* allows it", arguments={"text": f"m{i}"},
                        )
                    await anyio.sleep(0.0005)
                    if record:
                        log.record_outcome(
                            call_id=f"c{i}", agent="bench", server="echo", tool="echo", outcome="ok",
                            latency_s=0.0005, result_size=40, effect="allow", rule="echo/ec* → allow",
                        )
                ended = time.perf_counter(), time.process_time(), time.thread_time()
                tg.cancel_scope.cancel()
        print(json.dumps([(ended[0] - wall) / calls, (ended[1] - cpu) / calls, (ended[2] - loop) / calls]))

    anyio.run(main)
    """
)


def one_run(source: Path, calls: int, record: bool) -> list[float]:
    done = subprocess.run(
        [sys.executable, "-c", _RUN, str(source), str(calls), "yes" if record else "no"],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return [float(x) for x in json.loads(done.stdout)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="HEAD~1", help="the commit to compare against (default: HEAD~1)")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    with contextlib.ExitStack() as stack:
        before = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        print(f"before: {export(options.before, before)}")
        print(f"after:  this working tree ({ROOT})")
        variants = {"none": (ROOT, False), "before": (before, True), "after": (ROOT, True)}
        results: dict[str, list[list[float]]] = {key: [] for key in variants}
        for _ in range(options.runs):
            for key, (source, record) in variants.items():
                results[key].append(one_run(source, options.calls, record))
    medians = {key: [statistics.median(r[i] for r in runs) * 1000 for i in range(3)] for key, runs in results.items()}
    print(f"{options.calls} calls per run, {options.runs} runs each, medians per call:")
    for key, (wall, cpu, loop) in medians.items():
        added = (
            ""
            if key == "none"
            else (
                f"   audit adds: wall {wall - medians['none'][0]:+.3f} ms, CPU {cpu - medians['none'][1]:+.3f} ms, "
                f"loop {loop - medians['none'][2]:+.3f} ms"
            )
        )
        print(f"  ({key:<6}) wall {wall:.3f} ms, process CPU {cpu:.3f} ms, loop thread CPU {loop:.3f} ms{added}")


if __name__ == "__main__":
    main()
