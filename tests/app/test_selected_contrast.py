"""A selected row's text stays readable (WCAG AA, 4.5:1) in every theme: the "Ask" row of the permissions tree."""

from collections import Counter

import pytest
from PySide6.QtCore import QItemSelectionModel
from PySide6.QtGui import QColor, QPalette, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QStyle, QStyleOptionViewItem, QTreeView, QWidget

from app.common import EFFECT_COLOR
from app.palette import AA_TEXT, ReadableSelectionDelegate, contrast_ratio, readable_selection
from app.panels.agents import AgentsPanel
from app.panels.permissions_model import EFFECTIVE, NAME
from app.theme import Theme, apply_theme
from gateway_core import Effect
from tests.app.harness import run_async, running_bridge
from tests.integration.harness import stdio_fake

THEMES = (Theme.LIGHT, Theme.DARK, Theme.FOLLOW_OS)


@pytest.fixture
def restore_theme(qapp):
    yield
    apply_theme(Theme.FOLLOW_OS)


def text_contrast(image, rect) -> tuple[float, str, str]:
    """The contrast of the text drawn in ``rect`` on its background: the most common colour is the
    background, the text's colour the one that differs most from it (anti-aliased edges differ less)."""
    colors = Counter(
        image.pixelColor(x, y).name()
        for x in range(rect.left(), rect.right())
        for y in range(rect.top(), rect.bottom())
    )
    background = QColor(colors.most_common(1)[0][0])
    text = max((QColor(name) for name in colors), key=lambda color: contrast_ratio(color, background))
    return contrast_ratio(text, background), text.name(), background.name()


@pytest.mark.parametrize("theme", THEMES, ids=[theme.value for theme in THEMES])
def test_the_selected_ask_row_of_the_permissions_tree_reads_at_aa_contrast(qloop, qtbot, restore_theme, theme):
    async def scenario():
        async with running_bridge({"fake": stdio_fake()}, agents={"a": {"default": "ask"}}) as bridge:
            apply_theme(theme)
            host = QWidget()
            qtbot.addWidget(host)
            panel = AgentsPanel(bridge, host)
            host.resize(1000, 700)
            panel.resize(1000, 700)
            host.show()
            panel.select_agent("a")
            tree = panel.permissions.tree
            proxy = panel.permissions.proxy
            server = proxy.index(0, NAME)
            tree.expand(server)
            row = proxy.index(0, NAME, server)
            cell = proxy.index(0, EFFECTIVE, server)
            assert cell.data() == "Ask"
            flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
            tree.selectionModel().setCurrentIndex(row, flags)
            for focused in (True, False):  # the selection's colours with and without focus
                if focused:
                    tree.setFocus()
                else:
                    panel.permissions.search.setFocus()
                ratio, text, background = text_contrast(tree.viewport().grab().toImage(), tree.visualRect(cell))
                assert ratio >= AA_TEXT, f"{theme.value}, focused={focused}: {text} on {background} is {ratio:.2f}:1"

    run_async(qloop, scenario())


def test_a_style_palette_whose_selection_white_text_fails_gets_a_readable_selection(qapp):
    standard = qapp.style().standardPalette()
    fixed = readable_selection(standard)
    for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
        highlight = fixed.color(group, QPalette.ColorRole.Highlight)
        assert contrast_ratio(highlight, fixed.color(group, QPalette.ColorRole.HighlightedText)) >= AA_TEXT
    assert fixed.color(QPalette.ColorRole.Base) == standard.color(QPalette.ColorRole.Base)  # only the selection changes


def test_a_selected_cell_with_a_status_colour_is_drawn_in_the_selected_text_colour(qapp):
    model = QStandardItemModel(1, 1)
    item = QStandardItem("Ask")
    item.setForeground(EFFECT_COLOR[Effect.ASK])
    model.setItem(0, 0, item)
    view = QTreeView()
    view.setModel(model)
    delegate = ReadableSelectionDelegate(view)
    option = QStyleOptionViewItem()
    option.palette = qapp.palette()
    option.state = QStyle.StateFlag.State_Selected | QStyle.StateFlag.State_Enabled
    delegate.initStyleOption(option, model.index(0, 0))
    assert option.palette.color(QPalette.ColorRole.Text) == qapp.palette().color(QPalette.ColorRole.HighlightedText)
    option.state = QStyle.StateFlag.State_Enabled
    delegate.initStyleOption(option, model.index(0, 0))
    assert option.palette.color(QPalette.ColorRole.Text) == EFFECT_COLOR[Effect.ASK]
    view.deleteLater()
