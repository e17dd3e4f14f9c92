"""credit-simulator: a Monte Carlo simulator of platform consumer-credit portfolios."""
from importlib.metadata import PackageNotFoundError, version as _package_version

try:
    __version__ = _package_version("credit-simulator")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "unknown"
