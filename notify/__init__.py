"""Alert routing and delivery to field engineers: outbox, worker, targets."""
