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
from typing import Generic, TypeVar

Answer = TypeVar("Answer")


class AnswerCache(Generic[Answer]):
    """At most `size` answers by key; size 0 keeps none."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._answers: OrderedDict[Hashable, Answer] = OrderedDict()
        self._lock = Lock()

    def get(self, key: Hashable) -> Answer | None:
        with self._lock:
            answer = self._answers.get(key)
            if answer is not None:
                self._answers.move_to_end(key)
            return answer

    def put(self, key: Hashable, answer: Answer) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._answers[key] = answer
            self._answers.move_to_end(key)
            while len(self._answers) > self.size:
                self._answers.popitem(last=False)
