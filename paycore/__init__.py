"""paycore: take payments through many providers with one API."""

__version__ = "0.1.0"
