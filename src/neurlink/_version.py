"""The release's version: pyproject.toml reads it from here, ``neurlink.__version__`` re-exports it."""

__version__ = "0.3.0"
