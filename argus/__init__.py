"""Argus: streaming anomaly detection on Kafka. This package is the composition root."""
