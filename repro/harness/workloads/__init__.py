"""Workloads run on the hosts under test: the checkout step (and the agent that runs it), the
host init script (`hostinit`)."""
