"""Root pytest set-up: skip the doctests of optional modules whose extra is not installed."""

import importlib.util

collect_ignore_glob = []
if importlib.util.find_spec("dask") is None or importlib.util.find_spec("distributed") is None:
    collect_ignore_glob.append("skgradnorm/distributed/*")  # needs skgradnorm[dask]
