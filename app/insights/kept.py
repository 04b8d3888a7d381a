"""Figures kept while the counts they were computed from stay the same.

A figure over whole UTC days depends on the rollups, their pending deltas and the moments'
catalogue only. `rollups.epoch.state` names the counts a snapshot sees; with the catalogue
as read and the question asked it makes the key of the figures, so kept figures are exactly
those computing again would give: they are given again instead until data arrives, a fold
or a rebuild runs, or a moment changes. Per process, least recently used out first.
"""

from collections import OrderedDict
from collections.abc import Hashable
from threading import Lock
from typing import TypeVar

Figures = TypeVar("Figures")


class KeptFigures:
    """At most `size` answers by key; size 0 keeps none."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._kept: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = Lock()

    def get(self, key: Hashable, kind: type[Figures]) -> Figures | None:
        """The figures kept under `key`, if they are of `kind`."""
        with self._lock:
            found = self._kept.get(key)
            if not isinstance(found, kind):
                return None
            self._kept.move_to_end(key)
            return found

    def put(self, key: Hashable, figures: object) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._kept[key] = figures
            self._kept.move_to_end(key)
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
