"""Helpers every room uses: torch devices and chunking, validation, the torchvision guard,
safe files.

May import :mod:`skgradnorm.exceptions` only.
"""
