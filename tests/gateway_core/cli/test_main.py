from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway_core.cli import main
from gateway_core.paths import Paths
from gateway_core.secrets import open_secret_store

REPO_ROOT = Path(__file__).resolve().parents[3]


def run_toolgate(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway_core.cli", *args],
        cwd=REPO_ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_agents_add_prints_only_the_token_on_stdout_and_explains_on_stderr(toolgate_home: Path) -> None:
    result = run_toolgate("agents", "add", "cursor", "--name", "Cursor")

    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert result.stdout == token + "\n"
    assert token.startswith("tg_")
    assert "Authorization: Bearer <token>" in result.stderr
    assert "NOT encrypted" in result.stderr
    assert token not in (toolgate_home / "config.json").read_text()
    assert open_secret_store(Paths.from_env()).get("agent-token:cursor") == token


def test_a_keychain_backend_chosen_by_environment_is_used_by_the_cli() -> None:
    result = run_toolgate(
        "secrets", "backend", env={"PYTHON_KEYRING_BACKEND": "tests.fakes.memory_keyring.MemoryKeyring"}
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "MemoryKeyring\n"
    assert "encrypted by the OS keychain" in result.stderr


def test_errors_are_one_sentence_on_stderr_without_a_traceback() -> None:
    result = run_toolgate("agents", "remove", "ghost")

    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "Error: there is no agent 'ghost'; `toolgate agents list` shows the agents"
    )


def test_first_run_creates_the_default_config_and_says_where(
    toolgate_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["config", "check"])

    out, err = capsys.readouterr()
    config_file = toolgate_home / "config.json"
    assert code == 0
    assert f"Created a default config (no servers, no agents) at {config_file}." in err
    assert out == f"config OK: {config_file} (0 servers, 0 agents)\n"


def test_config_check_lists_every_problem_and_exits_1(toolgate_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_file = toolgate_home / "config.json"
    config_file.write_text(json.dumps({"servers": {"gh": {"command": "gh", "timeout_s": -1, "colour": "red"}}}))

    code = main(["config", "check"])

    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert f"config has 2 problem(s): {config_file}" in err
    assert "config.json: servers.gh.timeout_s: expected a number greater than 0, found -1" in err
    assert "config.json: servers.gh.colour: unknown key" in err


def test_config_check_reports_secrets_missing_from_the_store(
    toolgate_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = toolgate_home / "other.json"
    other.write_text(json.dumps({"servers": {"github": {"command": "gh", "env": {"GITHUB_TOKEN": "${secret:GH}"}}}}))

    code = main(["config", "check", "--config", str(other)])

    _, err = capsys.readouterr()
    assert code == 1
    assert (
        "other.json: servers.github.env.GITHUB_TOKEN: secret 'GH' is not in the secret store; "
        "add it with `toolgate secrets set GH`"
    ) in err


def test_a_secret_set_from_stdin_satisfies_config_check(
    toolgate_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (toolgate_home / "config.json").write_text(
        json.dumps({"servers": {"github": {"command": "gh", "env": {"GITHUB_TOKEN": "${secret:GH}"}}}})
    )
    monkeypatch.setattr(sys, "stdin", io.StringIO("ghp_value\n"))

    set_code = main(["secrets", "set", "GH"])
    check_code = main(["config", "check"])

    out, err = capsys.readouterr()
    assert (set_code, check_code) == (0, 0)
    assert "ghp_value" not in out + err
    assert open_secret_store(Paths.from_env()).get("GH") == "ghp_value"
    assert "(1 server, 0 agents)" in out


def test_secrets_remove_says_when_there_is_nothing_to_remove(capsys: pytest.CaptureFixture[str]) -> None:
    open_secret_store(Paths.from_env()).set("GH", "x")

    first = main(["secrets", "remove", "GH"])
    second = main(["secrets", "remove", "GH"])

    _, err = capsys.readouterr()
    assert (first, second) == (0, 1)
    assert "there is no secret 'GH'" in err


def test_agents_list_shows_a_table_without_tokens(capsys: pytest.CaptureFixture[str]) -> None:
    main(["agents", "add", "cursor", "--name", "Cursor"])
    main(["agents", "add", "claude"])
    token_out, _ = capsys.readouterr()

    code = main(["agents", "list"])

    out, err = capsys.readouterr()
    assert code == 0
    assert out.splitlines() == [
        "ID      NAME    TOOLS  ALL TOOLS  ON DEMAND  TOKEN",
        "cursor  Cursor  all    -          -          yes",
        "claude  claude  all    -          -          yes",
    ]
    assert err.startswith("ALL TOOLS and ON DEMAND (the size of each agent's tools/list) are read from Toolgate: ")
    assert err.endswith("start it with `toolgate serve`\n") and err.count("\n") == 1
    assert all(token not in out for token in token_out.split())


def test_agents_tools_switches_an_agent_to_on_demand_tools_and_back(
    toolgate_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["agents", "add", "cursor", "--name", "Cursor"])
    capsys.readouterr()

    to_on_demand = main(["agents", "tools", "cursor", "on_demand"])
    _, said = capsys.readouterr()
    main(["agents", "list"])
    listed, _ = capsys.readouterr()
    entry = json.loads((toolgate_home / "config.json").read_text())["agents"]["cursor"]
    back = main(["agents", "tools", "cursor", "all"])
    after = json.loads((toolgate_home / "config.json").read_text())["agents"]["cursor"]
    nobody = main(["agents", "tools", "ghost", "all"])
    _, err = capsys.readouterr()

    assert (to_on_demand, back, nobody) == (0, 0, 1)
    assert "list_servers, get_server_tools, execute_tool" in said
    assert listed.splitlines()[1].split() == ["cursor", "Cursor", "on_demand", "-", "-", "yes"]
    assert entry["tools"] == "on_demand" and "tools" not in after
    assert "there is no agent 'ghost'; `toolgate agents list` shows the agents" in err


def test_agents_rotate_prints_a_new_token_alone(capsys: pytest.CaptureFixture[str]) -> None:
    main(["agents", "add", "cursor"])
    first, _ = capsys.readouterr()

    code = main(["agents", "rotate", "cursor"])

    out, err = capsys.readouterr()
    assert code == 0
    assert out.strip().startswith("tg_")
    assert out.strip() != first.strip()
    assert "stops accepting the old one" in err


def test_config_path_prints_the_path_only(toolgate_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "path"]) == 0

    assert capsys.readouterr().out == f"{toolgate_home / 'config.json'}\n"


def test_without_a_command_it_points_to_serve_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2

    assert "toolgate serve" in capsys.readouterr().err


def test_an_invalid_secret_name_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["secrets", "remove", "bad name"]) == 1

    assert "is not a valid secret name" in capsys.readouterr().err


def test_config_check_reports_policy_warnings_with_their_path_and_still_passes(toolgate_home):
    (toolgate_home / "config.json").write_text(
        '{"servers": {"fs": {"command": "x"}}, "agents": {"cursor": {"name": "Cursor",'
        ' "rules": [{"match": "githb/*", "effect": "deny"}]}}}'
    )

    done = subprocess.run(
        [sys.executable, "-m", "gateway_core.cli", "config", "check"], capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0
    assert "warning:" in done.stderr
    assert "agents.cursor.rules[0].match" in done.stderr


def test_output_to_a_reader_that_went_away_ends_quietly_with_exit_1() -> None:
    """``toolgate … | head -1``: the reader closes the pipe; no "Broken pipe" error or traceback follows."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte is written
    try:
        result = subprocess.run(
            [sys.executable, "-m", "gateway_core.cli", "servers", "catalogue", "--json"],
            cwd=REPO_ROOT,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)

    assert (result.returncode, result.stderr) == (1, "")
