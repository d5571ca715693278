"""The settings panel: one control per option the option table offers the GUI, in its sections.

Built by a loop over `faceveil.options` (rows whose doors offer "gui"): a choice is a combo box
filled from its registry (an entry whose extra is missing is shown but cannot be chosen), a whole
number a spin box, a number a decimal spin box, anything else a line of text. A control whose
row says `when` (blur strength only for blur) is enabled only then. The panel knows nothing of
the pipeline: `options()` gives the flat options `faceveil run` flags set, and `changed` fires
when the person changes one.
"""

from __future__ import annotations

import contextlib
from typing import Any

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from ..options import BACKGROUND, DETECTION, HIDING, Option, options_for
from ..registry import extra_installed

NO_BACKGROUND = "none"  # the background combo's "leave the background as it is"
HEADINGS = {HIDING: "Hiding", DETECTION: "Detection", BACKGROUND: "Background"}  # in this order
# the keys older versions remembered an option under in QSettings
_SETTING_KEYS = {"image": "effect_image"}


def gui_options() -> list[Option]:
    """The rows of the option table the settings panel shows, by section (HEADINGS' order)."""
    order = list(HEADINGS)
    return sorted(options_for("gui"), key=lambda o: order.index(o.section)
                  if o.section in order else len(order))


def _hex(value: Any) -> str:
    if isinstance(value, tuple):
        return "#{:02x}{:02x}{:02x}".format(*value)
    return "" if value is None else str(value)


class SettingsPanel(QWidget):
    """The settings dock's contents. `widgets` maps each option's name to its control."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows = gui_options()
        self.widgets: dict[str, QWidget] = {}
        form = QFormLayout(self)
        section = None
        for option in self.rows:
            if option.section != section:
                section = option.section
                form.addRow(QLabel(f"<b>{HEADINGS.get(section, section.capitalize())}</b>"))
            widget = self._control(option)
            widget.setToolTip(option.help_text("gui"))
            self.widgets[option.name] = widget
            form.addRow(option.label or option.name, widget)
            if option.name == "quality":  # after the detection settings it applies
                self.reanalyse_button = QPushButton("Detect again with these settings")
                self.reanalyse_button.setToolTip(
                    "Detector and quality apply when faces are detected; your choices and drawn "
                    "boxes are kept")
                form.addRow(self.reanalyse_button)
        self.option_error = QLabel("")
        self.option_error.setWordWrap(True)
        self.option_error.setStyleSheet("color: #d04040")
        form.addRow(self.option_error)
        self.update_enabled()

    # ---- building

    def _control(self, option: Option) -> QWidget:
        default = option.default
        if option.choices is not None:
            c = QComboBox()
            names = option.choice_names() or []
            if option.name == "background":
                names = [NO_BACKGROUND, *names]
            registry = option.registry()
            entries = {e.name: e for e in registry.entries()} if registry is not None else {}
            for i, name in enumerate(names):
                c.addItem(name)
                if (entry := entries.get(name)) is not None:
                    if entry.help:
                        c.setItemData(i, entry.help, Qt.ItemDataRole.ToolTipRole)
                    if not extra_installed(entry.extra):
                        c.model().item(i).setEnabled(False)
            c.setCurrentText(default if default is not None else names[0])
            c.currentIndexChanged.connect(self._changed)
            return c
        if option.type in (int, float):
            s = QSpinBox() if option.type is int else QDoubleSpinBox()
            if option.range is not None:
                s.setRange(*option.range)
            if option.step is not None:
                s.setSingleStep(option.step if option.type is float else int(option.step))
            s.setValue(default)
            s.valueChanged.connect(self._changed)
            return s
        line = QLineEdit(_hex(default))
        if default is None:
            line.setPlaceholderText(option.help_text("gui"))
        line.editingFinished.connect(self._changed)
        return line

    def _changed(self, *_: Any) -> None:
        self.update_enabled()
        self.changed.emit()

    # ---- reading

    def text(self, name: str) -> str:
        w = self.widgets[name]
        return w.currentText() if isinstance(w, QComboBox) else w.text().strip()

    def _shown(self, option: Option) -> bool:
        return all(self.text(k) in v for k, v in (option.when or {}).items())

    def update_enabled(self) -> None:
        for option in self.rows:
            self.widgets[option.name].setEnabled(self._shown(option))

    def options(self) -> dict[str, Any]:
        """The controls as the pipeline's flat options (what `faceveil run` flags set).

        A text left empty, or one whose `when` does not hold (an effect picture while blurring),
        is None: the pipeline's default.
        """
        values: dict[str, Any] = {}
        for option in self.rows:
            w = self.widgets[option.name]
            if isinstance(w, (QSpinBox, QDoubleSpinBox)):
                values[option.name] = w.value()
                continue
            value = self.text(option.name)
            if option.name == "background" and value == NO_BACKGROUND:
                value = ""
            if not isinstance(w, QComboBox) and not self._shown(option):
                value = ""
            values[option.name] = value or None
        return values

    def show_error(self, text: str) -> None:
        self.option_error.setText(text)

    # ---- remembering (QSettings)

    def restore(self, settings: QSettings) -> None:
        """The values remembered last time, where they are still valid choices."""
        for option in self.rows:
            value = settings.value(f"options/{_SETTING_KEYS.get(option.name, option.name)}")
            if value is None:
                continue
            w = self.widgets[option.name]
            w.blockSignals(True)
            try:
                if isinstance(w, QComboBox):
                    if w.findText(str(value)) >= 0:
                        w.setCurrentText(str(value))
                elif isinstance(w, (QSpinBox, QDoubleSpinBox)):
                    with contextlib.suppress(TypeError, ValueError):  # a bad remembered value
                        w.setValue(type(w.value())(value))
                else:
                    w.setText(str(value))
            finally:
                w.blockSignals(False)
        self.update_enabled()

    def remember(self, settings: QSettings) -> None:
        for option in self.rows:
            w = self.widgets[option.name]
            value = w.value() if isinstance(w, (QSpinBox, QDoubleSpinBox)) else self.text(option.name)
            settings.setValue(f"options/{_SETTING_KEYS.get(option.name, option.name)}", value)
