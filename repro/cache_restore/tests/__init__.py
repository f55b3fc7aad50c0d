"""Unit tests of cache_restore's checker (no hosts: hand-written histories)."""
