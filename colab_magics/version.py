"""The package's version, apart from ``__init__`` so any layer can read it without the rest."""

__version__ = "0.1.0"
