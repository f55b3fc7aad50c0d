"""Probes: observers outside the hosts that append samples to the history."""
