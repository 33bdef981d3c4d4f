"""Places panels on Grafana's 24-column grid and numbers their ids, so no module hand-writes either.

Panels flow left to right and wrap to a new line when the next one does not fit; a line is as
tall as its tallest panel. A row starts a new line. A collapsed row holds the panels added after
it, placed as they would be when expanded (Grafana's model), and takes one grid unit itself.

Ids: a panel takes the next id; a row takes the next multiple of ten, so the panels of a section
keep their ids when an earlier section gains a panel (until a section holds ten or more).
"""

from __future__ import annotations

from grafana.generator.panels import Json

GRID_WIDTH = 24


class Layout:
    """Collects a dashboard's panels in order, giving each its `id` and `gridPos`."""

    def __init__(self) -> None:
        self.panels: list[Json] = []
        self._last_id = 0
        self._x = 0
        self._y = 0  # Top of the current line.
        self._line_height = 0
        self._collapsed: Json | None = None  # The collapsed row receiving panels, if any.

    def add(self, width: int, height: int, panel: Json) -> Json:
        """Place `panel` (`width` x `height` grid units) after the previous one; returns it."""
        if not 0 < width <= GRID_WIDTH:
            raise ValueError(f"panel width {width} does not fit the grid")
        if self._x + width > GRID_WIDTH:
            self._new_line()
        self._last_id += 1
        panel["id"] = self._last_id
        panel["gridPos"] = {"h": height, "w": width, "x": self._x, "y": self._y}
        self._x += width
        self._line_height = max(self._line_height, height)
        (self._collapsed["panels"] if self._collapsed else self.panels).append(panel)
        return panel

    def row(self, title: str, *, collapsed: bool = False) -> Json:
        """Start a row; a `collapsed` one holds every panel added until the next row."""
        self._new_line()
        if self._collapsed is not None:
            # Collapsed, the previous row's panels take no space below it.
            self._y = self._collapsed["gridPos"]["y"] + 1
            self._collapsed = None
        self._last_id = (self._last_id // 10 + 1) * 10
        row: Json = {
            "id": self._last_id,
            "type": "row",
            "title": title,
            "collapsed": collapsed,
            "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": self._y},
            "panels": [],
        }
        self.panels.append(row)
        self._y += 1
        if collapsed:
            self._collapsed = row
        return row

    def _new_line(self) -> None:
        self._y += self._line_height
        self._x = 0
        self._line_height = 0
