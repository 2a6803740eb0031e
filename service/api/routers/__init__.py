"""One router per resource: cases, cameras (with pushed frames), outbox, system (health, metrics)."""
