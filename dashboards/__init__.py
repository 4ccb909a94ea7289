"""Grafana dashboards as code, and the SLA report."""
