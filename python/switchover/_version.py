"""This binding's version: the one place Python writes it (Cargo.toml declares the project's;
python/tests/test_native.py checks the two agree, and pyproject.toml's copy). A leaf module:
``_native`` derives the library versions it accepts from it, ``__init__`` exports it."""

__version__ = "0.2.0"
