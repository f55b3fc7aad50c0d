"""Unit tests of reboot_blindspot's checker (no hosts: hand-written histories)."""
