"""The control channel: a 0600 control file, and an HTTP API that lists and answers approvals for token holders."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import httpx2
import mcp_types as types
import pytest
import uvicorn

from gateway_core import control_socket
from gateway_core.approvals import (
    AlwaysNotPossible,
    Answer,
    ApprovalBroker,
    ApprovalError,
    ApprovalRequest,
    Outcome,
    RequestKind,
    Resolution,
)
from gateway_core.cli.control_client import ControlClient
from gateway_core.control_file import (
    ControlEndpoint,
    ControlError,
    ControlFile,
    control_file_path,
    new_control_token,
    read_control_file,
)
from gateway_core.control_socket import ControlSocket
from gateway_core.frontend.control import ControlApp, identity_proof
from gateway_core.paths import Paths
from gateway_core.pinning import ToolChange, ToolPins

WAIT_S = 5
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")


class _TestServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = anyio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.listening.set()


@contextlib.asynccontextmanager
async def serving(app: ControlApp) -> AsyncIterator[str]:
    """Serve ``app`` on a real 127.0.0.1 socket; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = _TestServer(
        uvicorn.Config(app, log_config=None, lifespan="off", access_log=False, timeout_graceful_shutdown=1)
    )
    with sock:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            with anyio.fail_after(WAIT_S):
                await server.listening.wait()
            try:
                yield f"http://127.0.0.1:{port}"
            finally:
                server.should_exit = True


class Approvals:
    """A broker with calls waiting on it, started inside a task group."""

    def __init__(self, broker: ApprovalBroker) -> None:
        self.broker = broker
        self.results: dict[str, Resolution] = {}
        self._requested = anyio.Event()
        broker.subscribe(lambda event: self._requested.set())

    async def start_call(
        self, tg: anyio.abc.TaskGroup, tool: str, arguments: dict[str, object], kind: RequestKind = "tool"
    ) -> ApprovalRequest:
        async def ask() -> None:
            self.results[tool] = await self.broker.ask(
                agent="claude",
                server="github",
                tool=tool,
                public_name=f"github__{tool}",
                arguments=arguments,
                rule_text="github/* → ask",
                reason="github/* asks",
                session_id="s1",
                kind=kind,
            )

        self._requested = anyio.Event()
        tg.start_soon(ask)
        with anyio.fail_after(WAIT_S):
            await self._requested.wait()
        return self.broker.pending()[-1]


def make_broker() -> ApprovalBroker:
    return ApprovalBroker(timeout_s=lambda: 60, on_always=lambda request, effect: None)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.anyio
async def test_a_token_holder_lists_and_answers_pending_approvals_over_http():
    token = new_control_token()
    approvals = Approvals(make_broker())

    with anyio.fail_after(WAIT_S):
        async with anyio.create_task_group() as tg, serving(ControlApp(approvals.broker, token)) as url:
            first = await approvals.start_call(tg, "create_issue", {"title": "hi"})
            second = await approvals.start_call(tg, "delete_repo", {"name": "x"})
            async with httpx2.AsyncClient(base_url=url, headers=bearer(token)) as http:
                listed = await http.get("/control/approvals")
                allowed = await http.post(f"/control/approvals/{first.id}", json={"answer": "allow_once"})
                denied = await http.post(f"/control/approvals/{second.id}", json={"answer": "deny"})
                again = await http.post(f"/control/approvals/{second.id}", json={"answer": "allow_once"})
                empty = await http.get("/control/approvals")

    assert listed.status_code == 200
    [one, two] = listed.json()
    assert one["id"] == first.id and two["id"] == second.id
    assert {k: one[k] for k in ("agent", "server", "tool", "public_name", "arguments", "rule", "reason")} == {
        "agent": "claude",
        "server": "github",
        "tool": "create_issue",
        "public_name": "github__create_issue",
        "arguments": {"title": "hi"},
        "rule": "github/* → ask",
        "reason": "github/* asks",
    }
    assert one["age_s"] >= 0
    assert allowed.status_code == 200 and allowed.json()["id"] == first.id
    assert denied.status_code == 200 and denied.json()["tool"] == "delete_repo"
    assert again.status_code == 404 and "no pending approval" in again.json()["error"]
    assert empty.json() == []
    assert approvals.results["create_issue"].outcome is Outcome.ALLOWED
    assert approvals.results["delete_repo"].outcome is Outcome.DENIED


@pytest.mark.anyio
@pytest.mark.parametrize(
    "headers",
    [{}, bearer("wrong"), {"Authorization": "Basic abc"}, {"Authorization": "Bearer"}],
)
async def test_requests_without_the_control_token_are_refused_and_change_nothing(headers: dict[str, str]):
    token = new_control_token()
    approvals = Approvals(make_broker())

    with anyio.fail_after(WAIT_S):
        async with anyio.create_task_group() as tg, serving(ControlApp(approvals.broker, token)) as url:
            request = await approvals.start_call(tg, "create_issue", {})
            async with httpx2.AsyncClient(base_url=url, headers=headers) as http:
                listed = await http.get("/control/approvals")
                answered = await http.post(f"/control/approvals/{request.id}", json={"answer": "allow_once"})
            still_pending = approvals.broker.pending()
            tg.cancel_scope.cancel()

    assert listed.status_code == 401 and answered.status_code == 401
    assert token not in listed.text and "create_issue" not in listed.text
    assert still_pending == [request]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"answer": "maybe"}',
        b'{"verdict": "deny"}',
        b'{"answer": 1}',
        b'{"answer": "allow_for", "for_s": "15m"}',
        b'{"answer": "deny_for", "for_s": true}',
    ],
)
async def test_a_malformed_answer_is_a_400_that_leaves_the_request_pending(body: bytes):
    token = new_control_token()
    approvals = Approvals(make_broker())

    with anyio.fail_after(WAIT_S):
        async with anyio.create_task_group() as tg, serving(ControlApp(approvals.broker, token)) as url:
            request = await approvals.start_call(tg, "create_issue", {})
            async with httpx2.AsyncClient(base_url=url, headers=bearer(token)) as http:
                response = await http.post(f"/control/approvals/{request.id}", content=body)
            still_pending = approvals.broker.pending()
            tg.cancel_scope.cancel()

    assert response.status_code == 400
    assert "allow_once" in response.json()["error"]
    assert "Traceback" not in response.text
    assert still_pending == [request]


@pytest.mark.anyio
async def test_unknown_paths_and_methods_are_refused():
    token = new_control_token()

    with anyio.fail_after(WAIT_S):
        async with serving(ControlApp(make_broker(), token)) as url:
            async with httpx2.AsyncClient(base_url=url, headers=bearer(token)) as http:
                unknown_id = await http.post("/control/approvals/abc123", json={"answer": "deny"})
                unknown_path = await http.get("/control/elsewhere")
                nested = await http.post("/control/approvals/a/b", json={"answer": "deny"})
                wrong_list_method = await http.delete("/control/approvals")
                wrong_answer_method = await http.get("/control/approvals/abc123")
                oversized = await http.post("/control/approvals/abc123", content=b"x" * (128 * 1024))

    assert unknown_id.status_code == 404 and "abc123" in unknown_id.json()["error"]
    assert unknown_path.status_code == 404
    assert nested.status_code == 404
    assert wrong_list_method.status_code == 405
    assert wrong_answer_method.status_code == 405
    assert oversized.status_code == 400


@pytest.mark.anyio
async def test_anyone_gets_an_identity_proof_that_only_the_control_tokens_holder_can_give():
    token = new_control_token()
    broker = make_broker()

    with anyio.fail_after(WAIT_S):
        async with serving(ControlApp(broker, token)) as url:
            async with httpx2.AsyncClient(base_url=url) as http:  # no control token
                proved = await http.post("/control/identity", json={"nonce": "n-1"})
                other_nonce = await http.post("/control/identity", json={"nonce": "n-2"})
                no_nonce = await http.post("/control/identity", json={"nonce": ""})
                huge_nonce = await http.post("/control/identity", json={"nonce": "x" * 129})
                not_json = await http.post("/control/identity", content=b"{")
                wrong_method = await http.get("/control/identity")
                still_closed = await http.get("/control/approvals")

    assert proved.status_code == 200 and proved.json() == {"proof": identity_proof(token.encode(), "n-1")}
    assert proved.json()["proof"] != identity_proof(new_control_token().encode(), "n-1")
    assert other_nonce.json()["proof"] != proved.json()["proof"]
    assert token not in proved.text
    assert [r.status_code for r in (no_nonce, huge_nonce, not_json)] == [400, 400, 400]
    assert wrong_method.status_code == 405
    assert still_closed.status_code == 401


@pytest.mark.anyio
async def test_always_for_a_prompt_is_refused_with_the_reason_and_the_request_stays_pending():
    token = new_control_token()
    approvals = Approvals(make_broker())

    with anyio.fail_after(WAIT_S):
        async with anyio.create_task_group() as tg, serving(ControlApp(approvals.broker, token)) as url:
            request = await approvals.start_call(tg, "review", {}, kind="prompt")
            client = ControlClient(ControlEndpoint(url, token))
            with pytest.raises(AlwaysNotPossible, match="decided for the whole server") as refused:
                await anyio.to_thread.run_sync(client.answer, request.id, Answer.ALLOW_ALWAYS)
            listed = await anyio.to_thread.run_sync(client.pending)
            await anyio.to_thread.run_sync(client.answer, request.id, Answer.ALLOW_ONCE)

    assert "github/*" in str(refused.value)
    assert [(r["id"], r["kind"]) for r in listed] == [(request.id, "prompt")]
    assert approvals.results["review"].outcome is Outcome.ALLOWED


@pytest.mark.anyio
async def test_the_stdlib_client_lists_and_answers_through_a_real_socket():
    token = new_control_token()
    approvals = Approvals(make_broker())

    with anyio.fail_after(WAIT_S):
        async with anyio.create_task_group() as tg, serving(ControlApp(approvals.broker, token)) as url:
            request = await approvals.start_call(tg, "create_issue", {"title": "hi"})
            client = ControlClient(ControlEndpoint(url, token))
            listed = await anyio.to_thread.run_sync(client.pending)
            answered = await anyio.to_thread.run_sync(client.answer, request.id, Answer.ALLOW_SESSION)
            with pytest.raises(ApprovalError, match="no pending approval"):
                await anyio.to_thread.run_sync(client.answer, request.id, Answer.DENY)
            wrong = ControlClient(ControlEndpoint(url, "wrong"))
            with pytest.raises(ControlError, match="refused the control token"):
                await anyio.to_thread.run_sync(wrong.pending)

    assert [r["id"] for r in listed] == [request.id]
    assert answered["id"] == request.id
    assert approvals.results["create_issue"].answer is Answer.ALLOW_SESSION


def test_the_client_says_clearly_when_the_gateway_cannot_be_reached():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens on this port now

    client = ControlClient(ControlEndpoint(f"http://127.0.0.1:{port}", "t"), timeout_s=WAIT_S)
    with pytest.raises(ControlError, match=f"cannot reach Toolgate at http://127.0.0.1:{port}"):
        client.pending()


def test_the_control_file_round_trips_and_is_removed_on_exit():
    paths = Paths.from_env()
    endpoint = ControlEndpoint("http://127.0.0.1:47800", new_control_token())

    with ControlFile(paths, endpoint) as control:
        assert control.path == paths.state_dir / "control.json"
        content = json.loads(control.path.read_text(encoding="utf-8"))
        read = read_control_file(paths)

    assert content == {"url": endpoint.url, "token": endpoint.token, "pid": os.getpid()}
    assert read == endpoint
    assert not control_file_path(paths).exists()


@posix_only
def test_the_control_file_is_private_to_its_user():
    paths = Paths.from_env()

    with ControlFile(paths, ControlEndpoint("http://127.0.0.1:1", "t")) as control:
        file_mode = stat.S_IMODE(control.path.stat().st_mode)
        dir_mode = stat.S_IMODE(paths.state_dir.stat().st_mode)

    assert file_mode == 0o600
    assert dir_mode == 0o700


@posix_only
def test_a_control_file_readable_by_others_is_refused():
    paths = Paths.from_env()
    ControlFile(paths, ControlEndpoint("http://127.0.0.1:1", "t")).write()
    control_file_path(paths).chmod(0o644)

    with pytest.raises(ControlError, match="permissions are 0644, looser than 0600"):
        read_control_file(paths)


@posix_only
def test_a_symlinked_control_file_is_refused(tmp_path: Path):
    paths = Paths.from_env()
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps({"url": "http://127.0.0.1:1", "token": "t"}), encoding="utf-8")
    target.chmod(0o600)
    paths.state_dir.mkdir(mode=0o700)
    control_file_path(paths).symlink_to(target)

    with pytest.raises(ControlError, match="cannot read the control file"):
        read_control_file(paths)


def test_a_missing_control_file_says_toolgate_is_not_running(toolgate_home: Path):
    with pytest.raises(ControlError, match=r"not running for TOOLGATE_HOME=.*; start it with `toolgate serve`") as info:
        read_control_file(Paths.from_env())

    assert str(toolgate_home) in str(info.value)


def test_a_damaged_control_file_is_refused():
    paths = Paths.from_env()
    paths.ensure_dirs()
    control_file_path(paths).write_text("{not json", encoding="utf-8")
    control_file_path(paths).chmod(0o600)

    with pytest.raises(ControlError, match="damaged"):
        read_control_file(paths)


def test_removing_leaves_a_newer_gateways_control_file_alone():
    paths = Paths.from_env()
    old = ControlFile(paths, ControlEndpoint("http://127.0.0.1:1", "old-token"))
    old.write()
    ControlFile(paths, ControlEndpoint("http://127.0.0.1:2", "new-token")).write()

    old.remove()

    assert read_control_file(paths).token == "new-token"


@pytest.mark.skipif(not control_socket.supported(), reason="Unix sockets")
def test_a_stale_control_socket_is_replaced_and_anything_else_at_its_path_is_left_alone(tmp_path: Path):
    path = tmp_path / "state" / "control.sock"
    first = ControlSocket(path)
    first.sock.close()  # a gateway that died: its socket file stays
    second = ControlSocket(path)
    second.close()
    path.write_text("not a socket")

    with pytest.raises(OSError, match="is not a socket"):
        ControlSocket(path)
    assert path.read_text() == "not a socket"
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


@pytest.mark.anyio
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="long socket paths go through /proc/self/fd")
async def test_the_stdlib_client_answers_over_a_control_socket_even_at_a_long_path(tmp_path: Path):
    token = new_control_token()
    approvals = Approvals(make_broker())
    deep = tmp_path.joinpath(*["a-rather-long-folder-name"] * 6) / "control.sock"
    channel = ControlSocket(deep)
    server = _TestServer(uvicorn.Config(ControlApp(approvals.broker, token), log_config=None, lifespan="off"))
    try:
        with anyio.fail_after(WAIT_S):
            async with anyio.create_task_group() as tg:
                tg.start_soon(server.serve, [channel.sock])
                await server.listening.wait()
                request = await approvals.start_call(tg, "create_issue", {"title": "hi"})
                client = ControlClient(ControlEndpoint("http://127.0.0.1:1", token, str(deep)))
                listed = await anyio.to_thread.run_sync(client.pending)
                await anyio.to_thread.run_sync(client.answer, request.id, Answer.ALLOW_ONCE)
                server.should_exit = True
    finally:
        channel.close()

    assert len(os.fsencode(deep)) > 108
    assert [r["id"] for r in listed] == [request.id]
    assert approvals.results["create_issue"].outcome is Outcome.ALLOWED
    assert not deep.exists()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"answer": "allow_for"}', "needs a duration"),
        (b'{"answer": "allow_for", "for_s": 0}', "needs a duration"),
        (b'{"answer": "allow_once", "for_s": 60}', "a duration goes only with a timed answer"),
    ],
)
async def test_a_timed_answer_without_a_usable_duration_is_a_400_saying_why(body: bytes, reason: str):
    token = new_control_token()
    broker = ApprovalBroker(timeout_s=lambda: 60, on_always=lambda request, effect: None, on_timed=lambda *_: None)
    approvals = Approvals(broker)

    with anyio.fail_after(WAIT_S):
        async with anyio.create_task_group() as tg, serving(ControlApp(broker, token)) as url:
            request = await approvals.start_call(tg, "create_issue", {})
            async with httpx2.AsyncClient(base_url=url, headers=bearer(token)) as http:
                response = await http.post(f"/control/approvals/{request.id}", content=body)
            still_pending = broker.pending()
            tg.cancel_scope.cancel()

    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert still_pending == [request]


class PinnedTools:
    """The two things the control channel's tool-review routes read from the gateway, over real pins."""

    def __init__(self) -> None:
        echo = types.Tool(name="echo", description="Echo.", input_schema={"type": "object"})
        self.pins = ToolPins()
        self.pins.observe("fake", [echo], lambda server, tool: False)
        self.pins.observe("fake", [echo.model_copy(update={"description": "Echo v2."})], lambda server, tool: False)

    def tool_changes(self) -> list[ToolChange]:
        return self.pins.changes()

    def accept_tools(self, server: str, tool: str | None = None, *, seen: str | None = None) -> list[ToolChange]:
        return self.pins.accept(server, tool, seen=seen)


@pytest.mark.anyio
async def test_tool_changes_are_listed_and_accepted_only_as_shown_and_bad_bodies_are_400s():
    token = new_control_token()
    source = PinnedTools()
    app = ControlApp(make_broker(), token, names=source)  # type: ignore[arg-type]

    with anyio.fail_after(WAIT_S):
        async with serving(app) as url:
            async with httpx2.AsyncClient(base_url=url, headers=bearer(token)) as http:
                listed = await http.get("/control/tools/changes")
                malformed = [
                    await http.post("/control/tools/accept", content=body)
                    for body in (b"{", b"[]", b'{"tool": "echo"}', b'{"server": "fake", "tool": 3}')
                ]
                unknown = await http.post("/control/tools/accept", json={"server": "fake", "tool": "add"})
                stale = await http.post(
                    "/control/tools/accept", json={"server": "fake", "tool": "echo", "fingerprint": "0" * 64}
                )
                shown = listed.json()["changes"][0]["fingerprint"]
                accepted = await http.post(
                    "/control/tools/accept", json={"server": "fake", "tool": "echo", "fingerprint": shown}
                )
                wrong_method = await http.get("/control/tools/accept")

    (change,) = listed.json()["changes"]
    assert (change["server"], change["tool"], change["kind"], change["fields"]) == (
        "fake",
        "echo",
        "changed",
        ["description"],
    )
    assert change["accepted"]["description"] == "Echo." and change["now"]["description"] == "Echo v2."
    assert [response.status_code for response in malformed] == [400, 400, 400, 400]
    assert unknown.status_code == 404 and "no change waiting for review" in unknown.json()["error"]
    assert stale.status_code == 409 and "changed again" in stale.json()["error"]
    assert accepted.status_code == 200 and [c["tool"] for c in accepted.json()["accepted"]] == ["echo"]
    assert wrong_method.status_code == 405
    assert source.pins.changes() == []
