"""Light and dark palettes applied by the app itself, and status colours readable on both (WCAG AA)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from app.common import EFFECT_COLOR, EFFECT_TEXT, STATE_COLOR, STATE_TEXT, InlineError
from app.palette import DARK_TONES, LIGHT_TONES, Tone, contrast_ratio, dark_palette, is_dark, light_palette
from app.panels.log_rows import OUTCOME_COLOR, OUTCOME_TEXT
from app.theme import Theme, apply_theme

AA_TEXT = 4.5
BACKGROUNDS = (QPalette.ColorRole.Base, QPalette.ColorRole.AlternateBase, QPalette.ColorRole.Window)


@pytest.fixture
def restore_theme(qapp: QApplication) -> Iterator[None]:
    yield
    apply_theme(Theme.FOLLOW_OS)


def test_the_contrast_ratio_is_computed_as_wcag_defines_it():
    assert contrast_ratio(QColor("#000000"), QColor("#ffffff")) == pytest.approx(21.0)
    assert contrast_ratio(QColor("#777777"), QColor("#ffffff")) == pytest.approx(4.48, abs=0.01)
    # The colours the issue measured as failing on white.
    assert contrast_ratio(QColor("#b58900"), QColor("#ffffff")) < AA_TEXT
    assert contrast_ratio(QColor("#2e9e5b"), QColor("#ffffff")) < AA_TEXT


@pytest.mark.parametrize(
    ("name", "palette", "tones"), [("light", light_palette, LIGHT_TONES), ("dark", dark_palette, DARK_TONES)]
)
def test_every_status_colour_and_the_text_meet_aa_contrast_on_every_background_of_both_themes(
    qapp, name, palette, tones
):
    pal = palette()
    for role in BACKGROUNDS:
        background = pal.color(role)
        for tone in Tone:
            ratio = contrast_ratio(QColor(tones[tone]), background)
            assert ratio >= AA_TEXT, f"{name}: {tone.name} on {role.name} is {ratio:.2f}:1"
        for text in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.PlaceholderText):
            assert contrast_ratio(pal.color(text), background) >= AA_TEXT, f"{name}: {text.name} on {role.name}"


def test_light_status_colours_also_meet_aa_on_the_styles_own_palette(qapp):
    standard = qapp.style().standardPalette()  # what "Follow the OS" uses while the OS is light
    assert not is_dark(standard)
    for role in BACKGROUNDS:
        for tone in Tone:
            assert contrast_ratio(QColor(LIGHT_TONES[tone]), standard.color(role)) >= AA_TEXT, (tone, role)


def test_choosing_dark_or_light_applies_the_palette_and_recolours_states_and_errors(qapp, restore_theme):
    error = InlineError()
    apply_theme(Theme.DARK)
    qapp.processEvents()  # widgets hear of the new palette through the event loop
    assert is_dark()
    assert QApplication.palette().color(QPalette.ColorRole.Base) == dark_palette().color(QPalette.ColorRole.Base)
    for state, tone in STATE_COLOR.tones.items():
        assert STATE_COLOR[state] == QColor(DARK_TONES[tone])
    assert DARK_TONES[Tone.BAD] in error.styleSheet()
    apply_theme(Theme.LIGHT)
    qapp.processEvents()
    assert not is_dark()
    assert QApplication.palette().color(QPalette.ColorRole.Base) == light_palette().color(QPalette.ColorRole.Base)
    assert LIGHT_TONES[Tone.BAD] in error.styleSheet()
    error.deleteLater()


def test_no_status_is_shown_by_colour_alone():
    assert set(STATE_COLOR) <= set(STATE_TEXT)
    assert set(EFFECT_COLOR) <= set(EFFECT_TEXT)
    assert set(OUTCOME_COLOR) <= set(OUTCOME_TEXT)
