"""What a run writes: the output files, the HTML report, its charts and thumbnails.

May import :mod:`skgradnorm.metrics`, :mod:`skgradnorm._utils`, :mod:`skgradnorm.exceptions`
and the image readers of :mod:`skgradnorm._clip`.
"""
