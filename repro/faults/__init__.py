"""Faults: things done to hosts on purpose, which always get undone.

See repro.faults.base for the model.
"""
