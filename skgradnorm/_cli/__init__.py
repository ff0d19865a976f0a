"""The command line (``skgradnorm cluster``, ``embed``, ``demo``); imported only by
``skgradnorm.__main__`` and the console script.
"""

from ._main import main

__all__ = ["main"]
