"""The right side of the Agents panel: one agent's default and tool listing, a search box, its servers → tools tree.

Every change is written through ``bridge.api`` at once. The search box only filters by name: tools the
agent cannot see (effective deny) stay in the tree, marked as hidden from the agent.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import (
    QAbstractItemModel,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPoint,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QSizePolicy,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolButton,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from app.bridge import GatewayBridge
from app.common import EFFECT_TEXT, InlineError
from app.palette import ReadableSelectionDelegate
from app.panels.permissions_model import (
    EFFECTIVE,
    FILTER_ROLE,
    NAME,
    SETTING,
    SETTING_ROLE,
    SETTING_TEXTS,
    PermissionsModel,
)
from gateway_core import Effect, Rule, ToolgateError, ToolsMode, parse_config

DEFAULT_CHOICES = (Effect.ALLOW, Effect.ASK, Effect.DENY)
# The annotation rules the "By annotation" menu offers, for every server's tools.
ANNOTATION_PRESETS = (
    ("Allow tools marked read-only", Rule(match="*/*", effect=Effect.ALLOW, annotations={"readOnlyHint": True})),
    (
        "Ask before tools marked destructive",
        Rule(match="*/*", effect=Effect.ASK, annotations={"destructiveHint": True}),
    ),
)
ANNOTATIONS_NOTE = (
    "Annotations (read-only, destructive, …) are what each server says about its tools; a server may misstate them."
)
# What an agent added without a default gets, read from the configuration model itself.
NEW_AGENT_DEFAULT = parse_config('{"agents": {"new": {"name": "new"}}}').agents["new"].default
TOOLS_CHOICES = {ToolsMode.ALL: "All tools", ToolsMode.ON_DEMAND: "On-demand tools"}
TOOLS_TOOLTIP = (
    "All tools: the agent is listed every tool it may use, with its whole definition.\n"
    "On-demand tools: it is listed list_servers, get_server_tools and execute_tool, and finds\n"
    "the others when it needs them (same permissions, approvals and log)."
)
SIZES_TOOLTIP = (
    "What the agent receives in tools/list with each choice, as its tools are listed now: the JSON's size\n"
    "and an estimate of the tokens its model reads for it (about 4 characters a token), often with every request."
)


class SettingDelegate(ReadableSelectionDelegate):
    """Edits the Setting column with a combo box (Inherit, Allow, Ask, Deny); a choice applies at once."""

    def createEditor(
        self, parent: QWidget, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QWidget:
        """A combo box that commits as soon as a choice is made."""
        combo = QComboBox(parent)
        combo.addItems(list(SETTING_TEXTS))
        combo.activated.connect(lambda _: self._commit(combo))
        return combo

    def setEditorData(self, editor: QWidget, index: QModelIndex | QPersistentModelIndex) -> None:
        """Start from what is set on the row."""
        assert isinstance(editor, QComboBox)
        editor.setCurrentIndex(index.data(SETTING_ROLE) or 0)

    def setModelData(
        self, editor: QWidget, model: QAbstractItemModel, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        """Write the chosen setting (the model writes the agent's rule)."""
        assert isinstance(editor, QComboBox)
        if editor.currentIndex() != (index.data(SETTING_ROLE) or 0):
            model.setData(index, editor.currentIndex(), Qt.ItemDataRole.EditRole)

    def _commit(self, combo: QComboBox) -> None:
        self.commitData.emit(combo)
        self.closeEditor.emit(combo, QStyledItemDelegate.EndEditHint.NoHint)


class PermissionsPane(QWidget):
    """One agent's default selector, search box and permissions tree.

    Attributes:
        default_label: "Default for <agent>:".
        default_combo: the agent's default (Allow, Ask, Deny).
        tools_combo: what the agent's ``tools/list`` holds (All tools, On-demand tools).
        sizes: the size of the agent's ``tools/list`` in each of the two, as tools are listed now.
        search: filters the tree by server and tool name.
        tree: servers → tools; the Setting column is edited with ``SettingDelegate``.
        model: the ``PermissionsModel`` behind the tree.
        proxy: the search filter between ``model`` and ``tree``.
        error: problems with the last change, shown inline.

    Args:
        bridge: the running gateway.
        parent: the Qt parent.
    """

    def __init__(self, bridge: GatewayBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self._expanded: set[str] = set()
        self.model = PermissionsModel(bridge, self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setRecursiveFilteringEnabled(True)
        self.proxy.setAutoAcceptChildRows(True)  # a server found by name shows all its tools
        self.proxy.setFilterRole(FILTER_ROLE)
        self.proxy.setFilterKeyColumn(NAME)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)

        self.default_label = QLabel("&Default:")
        self.default_combo = QComboBox()
        self.default_label.setBuddy(self.default_combo)
        self.default_combo.setAccessibleName("Default decision (where no rule matches)")
        self.default_combo.addItems([EFFECT_TEXT[effect] for effect in DEFAULT_CHOICES])
        self.default_combo.setToolTip("What applies where no rule matches")
        self.default_combo.activated.connect(self._on_default_chosen)
        self.tools_combo = QComboBox()
        self.tools_combo.addItems(list(TOOLS_CHOICES.values()))
        self.tools_combo.setToolTip(TOOLS_TOOLTIP)
        self.tools_combo.activated.connect(self._on_tools_chosen)
        self.tools_combo.setAccessibleName("Tools the agent is listed")
        self.sizes = QLabel()
        self.sizes.setToolTip(SIZES_TOOLTIP)
        self.annotations_button = QToolButton()
        self.annotations_button.setText("By &annotation")
        self.annotations_button.setToolTip(ANNOTATIONS_NOTE)
        self.annotations_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.annotations_menu = QMenu(self.annotations_button)
        self.annotations_menu.aboutToShow.connect(self._fill_annotations_menu)
        self.annotations_button.setMenu(self.annotations_menu)
        # Never narrower than its text and arrow (the search box gives way instead).
        self.annotations_button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.annotation_rules = QLabel()
        self.annotation_rules.setWordWrap(True)
        self.annotation_rules.setToolTip(ANNOTATIONS_NOTE)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search servers and tools")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._on_search)
        self.search.setAccessibleName("Search servers and tools")

        self.tree = QTreeView()
        self.tree.setModel(self.proxy)
        self.tree.setUniformRowHeights(True)  # keeps a thousand tools quick to lay out
        self.tree.setItemDelegate(ReadableSelectionDelegate(self.tree))
        self.tree.setItemDelegateForColumn(SETTING, SettingDelegate(self.tree))
        self.tree.setEditTriggers(
            QAbstractItemView.EditTrigger.CurrentChanged
            | QAbstractItemView.EditTrigger.SelectedClicked
            | QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        self.tree.setAccessibleName("Permissions: servers and tools")
        # F2, Enter or Space on any row (any column) opens that row's Setting with its list shown;
        # one click on a Setting cell does the same.
        self.tree.installEventFilter(self)
        self.tree.pressed.connect(self._on_pressed)
        header = self.tree.header()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)  # ResizeToContents would measure every row
        header.setStretchLastSection(True)
        # Setting and Effective are as wide as their longest words; Name and Why share the rest.
        metrics = self.tree.fontMetrics()
        for column, width in (
            (NAME, 200),
            (SETTING, metrics.horizontalAdvance("Inherit") + 48),  # room for the combo's arrow
            (EFFECTIVE, metrics.horizontalAdvance("Deny (hidden from agent)") + 16),
        ):
            header.resizeSection(column, width)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._on_context_menu)
        self.error = InlineError()
        self.model.edit_failed.connect(self.error.show_message)
        self.proxy.modelAboutToBeReset.connect(self._remember_expanded)
        self.proxy.modelReset.connect(self._restore_expanded)

        tools_label = QLabel("&Tools:")
        tools_label.setBuddy(self.tools_combo)
        # Two rows, so that at the window's minimum size no selector or button is cut.
        top = QHBoxLayout()
        top.addWidget(self.default_label)
        top.addWidget(self.default_combo)
        top.addWidget(tools_label)
        top.addWidget(self.tools_combo)
        top.addStretch(1)
        second = QHBoxLayout()
        second.addWidget(self.annotations_button)
        second.addWidget(self.search, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addLayout(second)
        layout.addWidget(self.sizes)
        layout.addWidget(self.annotation_rules)
        layout.addWidget(self.error)
        layout.addWidget(self.tree, 1)
        bridge.config_applied.connect(self._on_config_applied)
        bridge.names_changed.connect(self._show_sizes)
        bridge.server_status_changed.connect(self._show_sizes)
        self.tree.expandAll()
        self.set_agent(None)

    def set_agent(self, agent_id: str | None) -> None:
        """Show agent ``agent_id``'s permissions (None: no agent chosen)."""
        if agent_id != self.model.agent_id:
            self.error.show_message("")
        self.model.set_agent(agent_id)
        self._show_default()

    def _on_config_applied(self) -> None:
        self.error.show_message("")  # the change that failed before is no longer what runs
        self._show_default()

    def _show_default(self) -> None:
        agent_id = self.model.agent_id
        agent = self._bridge.api.config.agents.get(agent_id) if agent_id is not None else None
        self.default_combo.setEnabled(agent is not None)
        self.tools_combo.setEnabled(agent is not None)
        self.annotations_button.setEnabled(agent is not None)
        self._show_annotation_rules()
        self.tree.setEnabled(agent is not None)
        self._show_sizes()
        if agent is None:
            # Disabled, but true to what a new agent gets: Ask, not whatever was shown last.
            self.default_label.setText("&Default:")
            self.default_combo.setCurrentIndex(DEFAULT_CHOICES.index(NEW_AGENT_DEFAULT))
            return
        self.default_label.setText(f"&Default for {agent.name.replace('&', '&&')}:")
        self.default_combo.setCurrentIndex(DEFAULT_CHOICES.index(agent.default))
        self.tools_combo.setCurrentIndex(list(TOOLS_CHOICES).index(agent.tools))

    def annotation_rules_of_agent(self) -> list[Rule]:
        """The shown agent's rules that match on annotations, in file order."""
        agent_id = self.model.agent_id
        agent = self._bridge.api.config.agents.get(agent_id) if agent_id is not None else None
        return [] if agent is None else [rule for rule in agent.rules if rule.annotations is not None]

    def _show_annotation_rules(self) -> None:
        rules = self.annotation_rules_of_agent()
        self.annotation_rules.setVisible(bool(rules))
        if rules:
            listed = "; ".join(rule.text for rule in rules)
            self.annotation_rules.setText(f"By annotation: {listed}. {ANNOTATIONS_NOTE}")

    def _fill_annotations_menu(self) -> None:
        """Offer the presets (checked when the agent has them; a choice adds or removes one) and each rule's removal."""
        menu = self.annotations_menu
        menu.clear()
        rules = self.annotation_rules_of_agent()
        for text, preset in ANNOTATION_PRESETS:
            action = menu.addAction(text)
            action.setCheckable(True)
            action.setChecked(any(_same_rule(rule, preset) for rule in rules))
            action.triggered.connect(lambda checked, preset=preset: self.set_annotation_rule(preset, checked))
        others = [rule for rule in rules if not any(_same_rule(rule, preset) for _, preset in ANNOTATION_PRESETS)]
        if others:
            menu.addSeparator()
        for rule in others:
            menu.addAction(f"Remove {rule.text}").triggered.connect(
                lambda _=False, rule=rule: self.set_annotation_rule(rule, False)
            )
        menu.addSeparator()
        note = menu.addAction(ANNOTATIONS_NOTE)
        note.setEnabled(False)

    def set_annotation_rule(self, rule: Rule, present: bool) -> None:
        """Add ``rule`` to the shown agent's rules (``present``) or remove it; a refusal is shown inline."""
        if present:
            self._change_agent(lambda agent_id: self._bridge.api.add_agent_rule(agent_id, rule))
        else:
            self._change_agent(lambda agent_id: self._bridge.api.remove_agent_rule(agent_id, rule))

    def _show_sizes(self, *_: object) -> None:
        agent_id = self.model.agent_id
        sizes = self._bridge.api.listing_sizes().get(agent_id) if agent_id is not None else None
        if sizes is None:
            self.sizes.clear()
            return
        self.sizes.setText(
            f"tools/list size: {TOOLS_CHOICES[ToolsMode.ALL]} {sizes.all.short()}"
            f" · {TOOLS_CHOICES[ToolsMode.ON_DEMAND]} {sizes.on_demand.short()}"
        )

    def edit_setting(self, index: QModelIndex) -> QComboBox | None:
        """Open the Setting of ``index``'s row (a proxy index of any column) with its choices shown.

        Returns the combo box, or None when the row's setting cannot be changed.
        """
        cell = index.siblingAtColumn(SETTING)
        if not cell.isValid() or not cell.flags() & Qt.ItemFlag.ItemIsEditable:
            return None
        if self.tree.currentIndex() != cell:
            self.tree.setCurrentIndex(cell)  # opens the editor (the CurrentChanged trigger)
        if not isinstance(self.tree.indexWidget(cell), QComboBox):
            self.tree.edit(cell)
        editor = self.tree.indexWidget(cell)
        if not isinstance(editor, QComboBox):
            return None
        editor.setFocus()
        editor.showPopup()
        return editor

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: D102 (Qt override)
        if watched is self.tree and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            keys = (Qt.Key.Key_F2, Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space)
            if event.key() in keys and event.modifiers() == Qt.KeyboardModifier.NoModifier:
                if self.edit_setting(self.tree.currentIndex()) is not None:
                    return True
        return super().eventFilter(watched, event)

    def _on_pressed(self, index: QModelIndex) -> None:
        if index.column() == SETTING:
            self.edit_setting(index)

    def _on_default_chosen(self, position: int) -> None:
        self._change_agent(lambda agent_id: self._bridge.api.set_agent_default(agent_id, DEFAULT_CHOICES[position]))

    def _on_tools_chosen(self, position: int) -> None:
        self._change_agent(lambda agent_id: self._bridge.api.set_agent_tools(agent_id, list(TOOLS_CHOICES)[position]))

    def _change_agent(self, change: Callable[[str], None]) -> None:
        """Apply ``change`` to the shown agent; a refusal is shown inline and the selectors show what runs."""
        agent_id = self.model.agent_id
        if agent_id is None:
            return
        try:
            change(agent_id)
        except ToolgateError as exc:
            self.error.show_message(str(exc))
            self._show_default()
        else:
            self.error.show_message("")

    def grant_menu(self, proxy_index: QModelIndex) -> QMenu | None:
        """The row's context menu, or None when it has nothing to offer.

        "End the timed grant" when a timed grant decides the row; "Undo the answer …" when a rule an
        approval answer wrote decides it (putting back the rule the answer replaced).
        """
        source = self.proxy.mapToSource(proxy_index)
        match = self.model.grant_at(source)
        answered = self.model.answer_at(source)
        if match is None and answered is None:
            return None
        menu = QMenu(self.tree)
        if match is not None:
            menu.addAction(f"End the timed grant for {match} now").triggered.connect(
                lambda: self._change_agent(lambda _agent_id: self.model.remove_grant(source))
            )
        if answered is not None and answered.source is not None:
            at = answered.source.at.astimezone().strftime("%Y-%m-%d %H:%M")
            menu.addAction(f"Undo the answer of {at} that wrote {answered.text}").triggered.connect(
                lambda: self._change_agent(lambda _agent_id: self.model.undo_answer(source))
            )
        return menu

    def _on_context_menu(self, position: QPoint) -> None:
        menu = self.grant_menu(self.tree.indexAt(position))
        if menu is not None:
            menu.popup(self.tree.viewport().mapToGlobal(position))

    def _on_search(self, text: str) -> None:
        self.proxy.setFilterFixedString(text.strip())
        if text.strip():
            self.tree.expandAll()

    def _remember_expanded(self) -> None:
        self._expanded = {
            self.proxy.index(row, NAME).data(FILTER_ROLE)
            for row in range(self.proxy.rowCount())
            if self.tree.isExpanded(self.proxy.index(row, NAME))
        }

    def _restore_expanded(self) -> None:
        for row in range(self.proxy.rowCount()):
            index = self.proxy.index(row, NAME)
            if index.data(FILTER_ROLE) in self._expanded:
                self.tree.expand(index)


def _same_rule(rule: Rule, other: Rule) -> bool:
    """Whether two rules read the same, wherever they came from."""
    return rule.model_copy(update={"source": None}) == other.model_copy(update={"source": None})
