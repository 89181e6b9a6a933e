"""Benchmarks: autodo next to its peers, in the same run, against the same stub model server.

A benchmark reports ratios (to an ideal, or to a peer measured minutes apart on the same machine),
not timings that pass or fail; ``docs/benchmarks.md`` says how to run each one.
"""
