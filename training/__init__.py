"""Pretraining Argus's own Chronos-Bolt from scratch on synthetic series (no real data)."""
