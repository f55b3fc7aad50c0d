"""Unit tests of leader_deadman's checker (no hosts: hand-written histories)."""
