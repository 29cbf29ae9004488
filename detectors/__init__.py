"""Embedders, scorers and thresholds over torch tensors; nothing here knows about Kafka."""
