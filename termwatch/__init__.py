"""termwatch: incident monitoring for self-service payment terminals."""

__version__ = "0.1.0"
