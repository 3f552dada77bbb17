"""What recording a call in the audit log costs the event loop: this checkout against an earlier commit.

Each run is a fresh process that drives an ``AuditLog`` the way the gateway does for a call — a
decision (awaited before the call would be forwarded), then the outcome — with a 0.5 ms sleep standing
in for the call, ``--calls`` times. Variants, taking turns run by run in one invocation:
  (none)    the same loop without recording anything (the floor)
  (before)  the ``AuditLog`` of the commit given by --before
  (after)   this working tree's
Prints, per variant, the median over runs of the wall time, the process's CPU time and the event
loop thread's CPU time per call, and what the audit adds over (none). Call ids are made as each
commit's gateway makes them; with ``--prefill N`` the log already holds N records (a log in use, whose
indexes no longer fit in a few pages).

    .venv/bin/python bench/audit_cost.py [--before REF] [--calls 3000] [--runs 5] [--prefill 0]
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
    import json, sys, tempfile, time, uuid
    sys.path.insert(0, sys.argv[1])
    from pathlib import Path
    import anyio
    import gateway_core.audit
    from gateway_core.audit import AuditLog, AuditRecord, RecordKind, store

    calls, record, prefill = int(sys.argv[2]), sys.argv[3] == "yes", int(sys.argv[4])
    # Call ids as the gateway makes them (before new_call_id: uuid4().hex).
    call_id = getattr(gateway_core.audit, "new_call_id", lambda: uuid.uuid4().hex)

    def filled(path: Path) -> None:
        conn = store.open_writer(path)
        try:
            old = AuditRecord(0, time.time() - 3600, RecordKind.DECISION, "", "bench", "echo", "echo", "allow",
                              "echo/ec* → allow", "rule echo/ec* allows it", None, None, 0.0, None, None, "{}")
            store.insert_records(conn, [AuditRecord(**{**vars(old), "call_id": call_id()}) for _ in range(prefill)])
        finally:
            conn.close()

    async def main() -> None:
        with tempfile.TemporaryDirectory() as folder:
            if prefill:
                filled(Path(folder) / "audit.sqlite3")
            log = AuditLog(Path(folder) / "audit.sqlite3")
            # Each commit's gateway records a call's pair its own way (``decide`` and ``finish`` after 1d2dd73).
            decide = getattr(log, "decide", None)
            async with anyio.create_task_group() as tg:
                await tg.start(log.run)
                for i in range(30 + calls):
                    if i == 30:
                        wall, cpu, loop = time.perf_counter(), time.process_time(), time.thread_time()
                    if record:
                        ids = call_id()
                        decision = dict(
                            call_id=ids, agent="bench", server="echo", tool="echo", effect="allow",
                            rule="echo/ec* → allow", reason="rule echo/ec* allows it", arguments={"text": f"m{i}"},
                        )
                        if decide is not None:
                            call = decide(**decision)
                        else:
                            await log.record_decision(**decision)
                    await anyio.sleep(0.0005)
                    if record:
                        if decide is not None:
                            log.finish(call, outcome="ok", latency_s=0.0005, result_size=40)
                        else:
                            log.record_outcome(
                                call_id=ids, agent="bench", server="echo", tool="echo", outcome="ok",
                                latency_s=0.0005, result_size=40, effect="allow", rule="echo/ec* → allow",
                            )
                ended = time.perf_counter(), time.process_time(), time.thread_time()
                tg.cancel_scope.cancel()
        print(json.dumps([(ended[0] - wall) / calls, (ended[1] - cpu) / calls, (ended[2] - loop) / calls]))

    anyio.run(main)
    """
)


def one_run(source: Path, calls: int, record: bool, prefill: int) -> list[float]:
    done = subprocess.run(
        [sys.executable, "-c", _RUN, str(source), str(calls), "yes" if record else "no", str(prefill)],
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
    parser.add_argument("--prefill", type=int, default=0, help="records the log already holds (a log in use)")
    options = parser.parse_args()
    with contextlib.ExitStack() as stack:
        before = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        print(f"before: {export(options.before, before)}")
        print(f"after:  this working tree ({ROOT})")
        variants = {"none": (ROOT, False), "before": (before, True), "after": (ROOT, True)}
        results: dict[str, list[list[float]]] = {key: [] for key in variants}
        for _ in range(options.runs):
            for key, (source, record) in variants.items():
                results[key].append(one_run(source, options.calls, record, options.prefill))
    medians = {key: [statistics.median(r[i] for r in runs) * 1000 for i in range(3)] for key, runs in results.items()}
    print(
        f"{options.calls} calls per run, {options.runs} runs each, {options.prefill} records before; medians per call:"
    )
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
