"""skuport: product information with export automation."""

__version__ = "0.1.0"
