"""A simulated fleet of payment terminals and their customers, with ground truth."""
