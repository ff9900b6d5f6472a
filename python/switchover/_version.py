"""This binding's version: the one place Python writes it (Cargo.toml declares the project's;
python/tests/test_native.py checks the two agree). pyproject.toml reads it from here (a dynamic
version). A leaf module: ``_native`` derives the library versions it accepts from it,
``__init__`` exports it."""

__version__ = "0.2.0"
