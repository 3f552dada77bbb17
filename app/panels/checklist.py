"""The Overview's "Get started" checklist, shown until its three steps are done (or hidden).

1. Import servers from the IDEs found on this machine (naming them: "Cursor: 2 servers"); with none
   found, add a server by hand instead.
2. Connect an agent (done once an agent exists).
3. Review what it may do (done once the person opened an agent's permissions from here, or set a rule).

Each step is a button. Whether step 3 was done and whether the list was hidden are kept in gui.ini.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from app.bridge import GatewayBridge
from app.theme import gui_settings
from gateway_core import Clients
from gateway_core.clients.importer import is_toolgate_entry

REVIEWED_KEY = "first_run/reviewed"
HIDDEN_KEY = "first_run/hidden"
DONE_MARK = "✓"  # a mark as well as the word "Done": never colour alone


@dataclass(frozen=True)
class FoundClient:
    """An IDE whose config file is on this machine, with how many servers Toolgate could import."""

    name: str
    servers: int

    def __str__(self) -> str:
        return f"{self.name}: {self.servers} server{'' if self.servers == 1 else 's'}"


def found_clients(clients: Clients) -> list[FoundClient]:
    """The IDEs with MCP servers to import, in the client table's order (one line per IDE)."""
    counts: dict[str, int] = {}
    for item in clients.installed():
        servers = sum(1 for server in item.servers if not is_toolgate_entry(server))
        if servers:
            counts[item.file.client.name] = counts.get(item.file.client.name, 0) + servers
    return [FoundClient(name, count) for name, count in counts.items()]


@dataclass
class Step:
    """One row of the checklist: its title, a line under it, its button and whether it is done."""

    title: QLabel
    detail: QLabel
    button: QPushButton


class GetStarted(QFrame):
    """Import, connect, review: each with a button, each ticked once done; hidden when all are.

    Args:
        bridge: the running gateway.
        open_clients: opens the Agents panel's Import (``"import"``) or Connect (``"connect"``) pane.
        open_agents: shows the Agents & permissions panel.
        add_server: opens the Servers panel's Add form.
    """

    def __init__(
        self,
        bridge: GatewayBridge,
        *,
        open_clients: Callable[[str], None],
        open_agents: Callable[[], None],
        add_server: Callable[[], None],
    ) -> None:
        super().__init__()
        self._bridge = bridge
        self._open_clients = open_clients
        self._open_agents = open_agents
        self._add_server = add_server
        self.found: list[FoundClient] = []
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAccessibleName("Get started")
        heading = QLabel("<b>Get started</b>")
        self.hide_button = QPushButton("&Hide this list")
        self.hide_button.setFlat(True)
        self.hide_button.clicked.connect(self.dismiss)
        top = QHBoxLayout()
        top.addWidget(heading, 1)
        top.addWidget(self.hide_button)
        self.import_step = self._step("Import servers from the IDEs found on this machine", "&Import…")
        self.connect_step = self._step("Connect an agent", "&Connect…")
        self.review_step = self._step("Review what it may do", "&Review…")
        self.import_step.button.clicked.connect(self._import_clicked)
        self.connect_step.button.clicked.connect(lambda: self._open_clients("connect"))
        self.review_step.button.clicked.connect(self._review_clicked)
        grid = QGridLayout()
        grid.setColumnStretch(1, 1)
        for row, step in enumerate((self.import_step, self.connect_step, self.review_step)):
            number = QLabel(f"{row + 1}.")
            grid.addWidget(number, row * 2, 0, Qt.AlignmentFlag.AlignTop)
            grid.addWidget(step.title, row * 2, 1)
            grid.addWidget(step.button, row * 2, 2, 2, 1, Qt.AlignmentFlag.AlignTop)
            grid.addWidget(step.detail, row * 2 + 1, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(grid)
        for signal in (bridge.config_applied, bridge.agents_changed):
            signal.connect(self.refresh)
        self.rescan()

    def _step(self, title: str, action: str) -> Step:
        title_label = QLabel(title)
        detail = QLabel()
        detail.setWordWrap(True)
        detail.setTextFormat(Qt.TextFormat.PlainText)  # IDE names come from files on disk
        button = QPushButton(action)
        button.setAccessibleName(title)
        return Step(title_label, detail, button)

    # --- state ---------------------------------------------------------------------------------------

    def rescan(self) -> None:
        """Look for IDE config files again, then redraw."""
        try:
            self.found = found_clients(Clients(self._bridge.paths, self._bridge.api.secret_store))
        except OSError:
            self.found = []
        self.refresh()

    @property
    def imported(self) -> bool:
        """Step 1: Toolgate has at least one server."""
        return bool(self._bridge.api.config.servers)

    @property
    def connected(self) -> bool:
        """Step 2: at least one agent exists."""
        return bool(self._bridge.api.config.agents)

    @property
    def reviewed(self) -> bool:
        """Step 3: the person opened the permissions from here, or some agent has a rule."""
        if any(agent.rules for agent in self._bridge.api.config.agents.values()):
            return True
        return _true(gui_settings(self._bridge.paths.home).value(REVIEWED_KEY, False))

    @property
    def hidden_by_person(self) -> bool:
        """The person chose "Hide this list"."""
        return _true(gui_settings(self._bridge.paths.home).value(HIDDEN_KEY, False))

    @property
    def done(self) -> bool:
        """All three steps are done."""
        return self.imported and self.connected and self.reviewed

    def refresh(self, *_: object) -> None:
        """Tick the steps that are done; hide the whole list once all are (or the person hid it)."""
        servers = len(self._bridge.api.config.servers)
        if self.imported:
            action = "&Import…" if self.found else "&Add a server…"
            self._show(self.import_step, True, f"Toolgate has {servers} server{'' if servers == 1 else 's'}.", action)
        elif self.found:
            found = ", ".join(str(client) for client in self.found)
            self._show(self.import_step, False, f"Found {found}.", "&Import…")
        else:
            self._show(
                self.import_step,
                self.imported,
                "No IDE with MCP servers was found on this machine: add a server yourself.",
                "&Add a server…",
            )
        agents = ", ".join(agent.name for agent in self._bridge.api.config.agents.values())
        self._show(
            self.connect_step,
            self.connected,
            f"Connected: {agents}." if agents else "Point an IDE at Toolgate; it becomes an agent with its own token.",
            "&Connect…",
        )
        self._show(
            self.review_step,
            self.reviewed,
            "Allow, ask or deny each server and tool; new agents ask before every call.",
            "&Review…",
        )
        self.setVisible(not self.done and not self.hidden_by_person)

    def _show(self, step: Step, done: bool, detail: str, action: str) -> None:
        title = step.button.accessibleName()
        step.title.setText(f"{DONE_MARK} {title} — done" if done else title)
        step.detail.setText(detail)
        step.button.setText(action)

    # --- actions -------------------------------------------------------------------------------------

    def dismiss(self) -> None:
        """Hide the list for good ("Hide this list")."""
        self._remember(HIDDEN_KEY)
        self.refresh()

    def _import_clicked(self) -> None:
        if self.found:
            self._open_clients("import")
        else:
            self._add_server()

    def _review_clicked(self) -> None:
        self._remember(REVIEWED_KEY)
        self._open_agents()
        self.refresh()

    def _remember(self, key: str) -> None:
        settings = gui_settings(self._bridge.paths.home)
        settings.setValue(key, True)
        settings.sync()


def _true(value: object) -> bool:
    # QSettings' ini format reads booleans back as the strings "true" / "false".
    return value is True or str(value).lower() == "true"
