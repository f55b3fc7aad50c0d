"""Faults: things done to hosts on purpose, which always get undone.

See repro.harness.faults.base for the model.
"""
