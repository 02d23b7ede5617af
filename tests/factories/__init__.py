"""Builders of tiny local checkpoints in the real on-disk layouts (nothing is downloaded)."""
