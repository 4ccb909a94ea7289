"""The MQTT collector: decode, validate, store, and keep each terminal's current state."""
