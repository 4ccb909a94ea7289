"""Rules, complaint correlation and the incident lifecycle."""
