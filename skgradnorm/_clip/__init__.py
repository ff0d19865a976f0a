"""The CLIP encoder's rooms: model loading, the fast text path, image inputs, the image and
noun caches and embedding files.

May import :mod:`skgradnorm._utils`, :mod:`skgradnorm.exceptions` and
:mod:`skgradnorm.vocabulary`.
"""
