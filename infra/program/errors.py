"""Error types shared by every floor: the program, the engine and the commands all raise them.

They live on the ground floor, beside the catalog, so that nothing below the engine has to import
the engine to report bad input.
"""

from __future__ import annotations


class InputError(ValueError):
    """An unreadable or unrecognized input file or argument (the CLI exits 2)."""
