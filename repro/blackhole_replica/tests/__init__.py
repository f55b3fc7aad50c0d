"""Unit tests of blackhole_replica's checker (no hosts: hand-written histories)."""
