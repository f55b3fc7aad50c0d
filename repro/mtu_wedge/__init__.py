"""mtu_wedge: build servers vanish from the network under 20 concurrent ssh streams."""
