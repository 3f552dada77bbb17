"""What the conformance suite reported, and how a run through Toolgate differs from the direct one.

Read by ``scripts/conformance.py``: the suite's ``checks.json`` files become one ``ScenarioResult`` per
scenario; ``compare`` sets a direct run beside a run through Toolgate and, with the list of differences
known today (``scripts/conformance-expected.toml``), says which differences are expected, which are
not, and which listed ones have gone; ``render_report`` prints that for one server and one era.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PASS, WARN, FAIL, ERROR, NOT_RUN = "pass", "warn", "FAIL", "ERROR", "-"
OK_STATUSES = (PASS, WARN)
BAD_STATUSES = (FAIL, ERROR)
# A result folder is "server-<scenario>-<ISO timestamp with : and . replaced by ->".
RESULT_DIR = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$")
SCENARIO_START = re.compile(r"^=== Running scenario: (?P<scenario>\S+) ===$", re.MULTILINE)
# What an entry of the expected list must say it belongs to: an item of issue 15, or "new".
REASON = re.compile(r"^(§([1-9]|1[0-3])\b|new\b)")
# The check id that stands for "the suite wrote no result through Toolgate" (the whole scenario).
NO_RESULT = "(no result)"
DETAILS_CHARS = 600


class ExpectedListError(Exception):
    """The expected-differences file cannot be used; the message says where and why."""


# ---------------------------------------------------------------------------------------------------
# One run's results
# ---------------------------------------------------------------------------------------------------


@dataclass
class ScenarioResult:
    """One scenario's outcome in one run.

    Attributes:
        status: PASS, WARN (no failed check, some warnings), FAIL, or ERROR (the suite wrote no result).
        checks: the suite's checks, as in its ``checks.json``.
        error: why there is no result, for ERROR.
    """

    status: str
    checks: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""

    def failed_ids(self) -> list[str]:
        """The ids of its failed checks, each once, in order (ids repeat when a check runs several times)."""
        if self.status == ERROR:
            return [NO_RESULT]
        return list(dict.fromkeys(check.get("id", "?") for check in self.checks if check.get("status") == "FAILURE"))

    def passed_ids(self) -> set[str]:
        """The ids of the checks that ran and never failed."""
        ran = {check.get("id", "?") for check in self.checks if check.get("status") != "SKIPPED"}
        return ran - set(self.failed_ids())

    def warned_ids(self) -> list[str]:
        """The ids of its checks with a warning (a SHOULD not met), each once, in order."""
        return list(dict.fromkeys(check.get("id", "?") for check in self.checks if check.get("status") == "WARNING"))

    def lines(self, check_id: str, statuses: Iterable[str] = ("FAILURE",)) -> list[str]:
        """One line per occurrence of a check with one of ``statuses``: ``check-id: message | details``."""
        if check_id == NO_RESULT:
            return [self.error]
        return [
            _describe_check(check)
            for check in self.checks
            if check.get("id") == check_id and check.get("status") in set(statuses)
        ]


def _describe_check(check: Mapping[str, Any]) -> str:
    message = check.get("errorMessage") or check.get("description") or ""
    details = check.get("details")
    text = f"{check.get('id', '?')}: {message}"
    if details:
        text += f" | details: {json.dumps(details, separators=(',', ':'))[:DETAILS_CHARS]}"
    return text


def scenario_status(checks: list[dict[str, Any]]) -> str:
    """The status of a scenario from its checks, the way the suite's summary counts them."""
    statuses = {check.get("status") for check in checks}
    if "FAILURE" in statuses:
        return FAIL
    if "WARNING" in statuses:
        return WARN
    return PASS


def read_results(output_dir: Path, suite_output: str) -> dict[str, ScenarioResult]:
    """Every scenario the suite ran, from its ``checks.json`` files.

    A scenario the suite announced on stdout but wrote no ``checks.json`` for threw inside the suite;
    it is an ERROR with the suite's own message.

    Args:
        output_dir: the folder given to the suite as ``-o``.
        suite_output: the suite's stdout and stderr, for the scenarios it ran and their errors.
    """
    written: dict[str, ScenarioResult] = {}
    for checks_file in sorted(output_dir.glob("*/checks.json")):
        match = RESULT_DIR.match(checks_file.parent.name)
        if match is None:
            continue
        checks = json.loads(checks_file.read_text(encoding="utf-8"))
        if checks:
            written[match["scenario"]] = ScenarioResult(scenario_status(checks), checks)
        else:
            written[match["scenario"]] = ScenarioResult(ERROR, error="the suite recorded no checks for it")
    # In the order the suite ran them; a single --scenario run announces nothing.
    results: dict[str, ScenarioResult] = {}
    for scenario in SCENARIO_START.findall(suite_output):
        missing = ScenarioResult(ERROR, error=_suite_error(scenario, suite_output))
        results[scenario] = written.pop(scenario, missing)
    return {**results, **written}


def _suite_error(scenario: str, suite_output: str) -> str:
    marker = f"Failed to run scenario {scenario}:"
    for line in suite_output.splitlines():
        if line.startswith(marker):
            return line.removeprefix(marker).strip() or "the suite failed to run it"
    return "the suite wrote no result for it (see its output with --keep)"


# ---------------------------------------------------------------------------------------------------
# The differences expected today
# ---------------------------------------------------------------------------------------------------


def load_expected(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    """The expected differences: (server, era) -> {"scenario" or "scenario:check-id": reason}.

    Raises:
        ExpectedListError: the file is not valid TOML of that shape, or a reason does not start with
            the issue-15 item it belongs to ("§1" … "§13") or "new".
    """
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ExpectedListError(f"{path}: {exc}") from exc
    expected: dict[tuple[str, str], dict[str, str]] = {}
    for server, eras in document.items():
        if not isinstance(eras, dict):
            raise ExpectedListError(f"{path}: [{server}] must be a table of eras")
        for era, entries in eras.items():
            if not isinstance(entries, dict):
                raise ExpectedListError(f'{path}: [{server}."{era}"] must be a table of entries')
            for entry, reason in entries.items():
                if not isinstance(reason, str) or not REASON.match(reason):
                    raise ExpectedListError(
                        f'{path}: [{server}."{era}"] "{entry}" must say which item of issue 15 it belongs to '
                        f'("§1" … "§13") or "new", not {reason!r}'
                    )
            expected[(server, era)] = dict(entries)
    return expected


# ---------------------------------------------------------------------------------------------------
# Direct beside through Toolgate
# ---------------------------------------------------------------------------------------------------


@dataclass
class Comparison:
    """One server in one era, run directly and through Toolgate.

    Attributes:
        direct: the direct run's results (empty if it was not run).
        gateway: the results through Toolgate (empty if not run).
        differences: scenario -> ids of the checks that fail through Toolgate but not directly. For a
            scenario that passes directly, every check that fails through Toolgate; for one that fails
            directly (a known failure of the server), the checks that passed directly and fail through
            Toolgate. ``NO_RESULT`` when the suite wrote nothing through Toolgate.
        expected: for each difference, the expected-list entry that covers it, or None.
        stale: expected-list entries that cover no difference any more, with their reasons.
        entries: the expected-list entries for this server and era.
    """

    direct: dict[str, ScenarioResult]
    gateway: dict[str, ScenarioResult]
    differences: dict[str, list[str]]
    expected: dict[tuple[str, str], str | None]
    stale: dict[str, str]
    entries: dict[str, str]

    def known_failures(self) -> list[str]:
        """Scenarios that fail directly: failures of the server, which say nothing about Toolgate."""
        return [name for name, result in self.direct.items() if result.status in BAD_STATUSES]

    def regressions(self) -> list[str]:
        """Scenarios that pass directly but fail through Toolgate, in suite order."""
        return [
            name
            for name in self.differences
            if self.direct[name].status in OK_STATUSES and self.gateway[name].status in BAD_STATUSES
        ]

    def unexpected(self) -> list[tuple[str, str]]:
        """(scenario, check id) for each difference the expected list does not cover."""
        return [key for key, entry in self.expected.items() if entry is None]

    def warnings_only_through(self) -> dict[str, list[str]]:
        """Checks with a warning through Toolgate that passed directly, by scenario (informative only)."""
        found: dict[str, list[str]] = {}
        for name, result in self.gateway.items():
            if name in self.direct:
                ids = [i for i in result.warned_ids() if i in self.direct[name].passed_ids()]
                if ids:
                    found[name] = ids
        return found

    def failed(self) -> bool:
        """Whether the run must fail: a difference nobody expected, or an expected one that has gone."""
        return bool(self.unexpected() or self.stale)


def compare(
    direct: dict[str, ScenarioResult],
    gateway: dict[str, ScenarioResult],
    entries: Mapping[str, str],
    *,
    complete: bool,
) -> Comparison:
    """Set the two runs side by side and hold them against the expected-list ``entries``.

    Only scenarios both runs have are compared. An entry is stale when its scenario was compared and
    shows no such difference, or, when both runs were ``complete`` (every scenario of the era), when
    neither run has its scenario at all; a scenario left out on purpose (``--scenario``, ``--only``)
    says nothing either way.
    """
    differences: dict[str, list[str]] = {}
    for name, result in direct.items():
        if name not in gateway or result.status == ERROR:
            continue
        through = gateway[name]
        if result.status in OK_STATUSES:
            ids = through.failed_ids()
        else:
            passed = result.passed_ids()
            ids = [check_id for check_id in through.failed_ids() if check_id in passed]
        if ids:
            differences[name] = ids
    expected: dict[tuple[str, str], str | None] = {}
    for name, ids in differences.items():
        for check_id in ids:
            entry = next((e for e in (name, f"{name}:{check_id}") if e in entries), None)
            expected[(name, check_id)] = entry
    compared = {name for name in direct if name in gateway}
    ran = {*direct, *gateway}
    covering = {entry for entry in expected.values() if entry is not None}
    stale = {
        entry: reason
        for entry, reason in entries.items()
        if entry not in covering
        and (entry.partition(":")[0] in compared or (complete and entry.partition(":")[0] not in ran))
    }
    return Comparison(direct, gateway, differences, expected, stale, dict(entries))


# ---------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------


def counts(results: Mapping[str, ScenarioResult]) -> str:
    """``N pass, M fail`` for a run: pass counts scenarios with no failed check (warnings or not)."""
    if not results:
        return "not run"
    passed = sum(result.status in OK_STATUSES for result in results.values())
    failed = len(results) - passed
    return f"{passed} pass, {failed} fail" if failed else f"{passed} pass"


def render_table(comparison: Comparison) -> str:
    """The scenario | direct | through Toolgate | note table, as plain text."""
    rows = [("scenario", "direct", "through Toolgate", "")]
    for name in dict.fromkeys([*comparison.direct, *comparison.gateway]):
        rows.append(
            (name, _cell(comparison.direct.get(name)), _cell(comparison.gateway.get(name)), _note(comparison, name))
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def _cell(result: ScenarioResult | None) -> str:
    return NOT_RUN if result is None else result.status


def _note(comparison: Comparison, name: str) -> str:
    """Why a row matters: a known failure of the server, an expected difference, or an unexpected one."""
    direct = comparison.direct.get(name)
    if name in comparison.differences:
        entries = {comparison.expected[(name, i)] for i in comparison.differences[name]}
        if None in entries:
            return "DIFFERS, NOT EXPECTED"
        reasons = dict.fromkeys(comparison.entries[e].split(" ", 1)[0] for e in entries if e is not None)
        return "differs, expected: " + ", ".join(reasons)
    if direct is not None and direct.status in BAD_STATUSES:
        return "known failure of the server"
    return ""


def render_report(comparison: Comparison, expected_file: str) -> str:
    """Counts per run, the server's known failures, then every difference with the suite's details."""
    direct, gateway = comparison.direct, comparison.gateway
    lines = [f"direct: {counts(direct)}", f"through Toolgate: {counts(gateway)}"]
    if not direct or not gateway:  # one run only (--only): what failed in it
        ran = direct or gateway
        failed = [name for name, result in ran.items() if result.status in BAD_STATUSES]
        lines += ["", f"Failed ({len(failed)}):"] if failed else []
        for name in failed:
            lines += [f"  {name}"] + [f"    {line}" for i in ran[name].failed_ids() for line in ran[name].lines(i)]
        return "\n".join(lines)
    known = comparison.known_failures()
    if known:
        lines += [
            "",
            f"Known failures of the server (they fail directly; they say nothing about Toolgate) ({len(known)}):",
        ]
        for name in known:
            lines.append(f"  {name}: {direct[name].lines(direct[name].failed_ids()[0])[0][:200]}")
    regressions = comparison.regressions()
    if regressions:
        lines += ["", f"Pass directly but fail through Toolgate ({len(regressions)}):"]
        for name in regressions:
            lines += _difference_lines(comparison, name)
    else:
        lines += ["", "No scenario passes directly but fails through Toolgate."]
    inner = [name for name in comparison.differences if name not in regressions]
    if inner:
        lines += ["", "Checks that pass directly but fail through Toolgate, inside known failures of the server:"]
        for name in inner:
            lines += _difference_lines(comparison, name)
    unexpected = comparison.unexpected()
    if unexpected:
        lines += ["", f"NOT EXPECTED ({len(unexpected)}; fix Toolgate, or list them in {expected_file}):"]
        lines += [f"  {name}:{check_id}" for name, check_id in unexpected]
    if comparison.stale:
        lines += ["", f"Listed in {expected_file}, but no longer a difference or no longer run (remove them):"]
        lines += [f"  {entry} = {reason!r}" for entry, reason in comparison.stale.items()]
    warned = comparison.warnings_only_through()
    if warned:
        lines += ["", "Warnings (SHOULDs not met) only through Toolgate, for information:"]
        for name, ids in warned.items():
            lines += [f"  {name}"] + [f"    {line}" for i in ids for line in gateway[name].lines(i, ("WARNING",))]
    return "\n".join(lines)


def _difference_lines(comparison: Comparison, name: str) -> list[str]:
    direct, gateway = comparison.direct[name], comparison.gateway[name]
    lines = [f"  {name}"]
    for check_id in comparison.differences[name]:
        entry = comparison.expected[(name, check_id)]
        label = f"expected ({comparison.entries[entry]})" if entry is not None else "NOT EXPECTED"
        lines.append(f"    [{label}]")
        lines += [f"    through Toolgate: {line}" for line in gateway.lines(check_id)]
        if check_id != NO_RESULT:
            lines += [f"    directly:         {line}" for line in direct.lines(check_id, ("SUCCESS", "WARNING"))[:1]]
    return lines


def render_summary_line(server: str, era: str, comparison: Comparison) -> str:
    """One line for the end of the run: the counts and the verdict for one server in one era."""
    regressions = len(comparison.regressions())
    unexpected = len({name for name, _ in comparison.unexpected()})
    verdict = f"{regressions} pass directly but fail through Toolgate"
    if unexpected or comparison.stale:
        verdict += f" ({unexpected} scenario(s) with unexpected differences, {len(comparison.stale)} stale entries)"
    return (
        f"{server} {era}: direct {counts(comparison.direct)}; through Toolgate {counts(comparison.gateway)}; {verdict}"
    )
