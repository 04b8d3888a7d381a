"""scipy's special functions, imported on first use.

Importing `scipy.special` takes about a fifth of a second (it pulls in parts of numpy the
service never calls). Every process would pay it at start, a command-line call or a worker
alike, whether it ever computes a figure or not; the first figure pays it once instead.
"""

from functools import cache
from types import ModuleType


@cache
def special() -> ModuleType:
    """The `scipy.special` module."""
    from scipy import special as module

    loaded: ModuleType = module
    return loaded
