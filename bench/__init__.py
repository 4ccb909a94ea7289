"""Benchmarks: commands that run termwatch as it is deployed and print what they measured.

``termwatch bench ingest|api|notify|publish``; ``docs/performance.md`` records the figures.
Nothing in the product imports this package.
"""
