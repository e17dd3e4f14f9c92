"""The simulator's version, from the installed package's metadata ("unknown" in a source tree that
is not installed)."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("credit-simulator")
except PackageNotFoundError:
    __version__ = "unknown"
