"""The terminal fleet: the telemetry contract's typed messages and the fleet registry."""
