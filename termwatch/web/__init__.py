"""The HTTP API and the web console."""
