"""Answers kept while the counts they were computed from stay the same.

A figure over whole UTC days depends on the rollups, their pending deltas and the moments'
catalog only. `rollups.epoch.state` names the counts a snapshot sees; with the catalog as
read and the question asked it makes the key of an answer, so a kept answer is exactly the
one computing again would give: it is given again instead until data arrives, a fold or a
rebuild runs, or a moment changes. Per process, least recently used out first.
"""

from collections import OrderedDict
from collections.abc import Hashable
from threading import Lock
from typing import TypeVar

Answer = TypeVar("Answer")


class AnswerCache:
    """At most `size` answers by key; size 0 keeps none."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._answers: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = Lock()

    def get(self, key: Hashable, kind: type[Answer]) -> Answer | None:
        """The answer kept under `key`, if it is one of `kind`."""
        with self._lock:
            answer = self._answers.get(key)
            if not isinstance(answer, kind):
                return None
            self._answers.move_to_end(key)
            return answer

    def put(self, key: Hashable, answer: object) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._answers[key] = answer
            self._answers.move_to_end(key)
            while len(self._answers) > self.size:
                self._answers.popitem(last=False)
