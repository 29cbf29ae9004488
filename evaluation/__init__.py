"""Scoring anomaly scores and alerts against labelled intervals; PATE is in :mod:`evaluation.pate`."""
