"""Unit tests of sunday_scheduler's checker (no hosts: hand-written histories)."""
