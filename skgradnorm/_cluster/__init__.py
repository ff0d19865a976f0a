"""Clustering machinery with no knowledge of images or text: spherical k-means, the K search,
nearest neighbours and the label-free criteria.

May import :mod:`skgradnorm._utils` and :mod:`skgradnorm.exceptions` only.
"""
