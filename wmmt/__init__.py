"""Shared core of the WMMT pipeline: dataset manifests, the time base, config, safe I/O."""
