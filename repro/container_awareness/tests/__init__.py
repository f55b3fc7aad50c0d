"""Unit tests of container_awareness's checker (no hosts: hand-written histories)."""
