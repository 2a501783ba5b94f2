"""The one error the sweep package raises for bad input (its own module, so every part of the package
can raise it without importing the spec)."""


class UsageError(Exception):
    """Bad input: printed as one line, exit code 2."""
