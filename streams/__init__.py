"""Kafka in and out: records, dead letters, windows, alerts, the pipeline, the local broker."""
