"""Framework adapter tests."""
