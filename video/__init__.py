"""Camera clips: decoding (decord), clip cutting and labelled anomalies, clip encoders, frame scores.

See docs/video.md. Nothing here knows Kafka: ``streams`` hands clips in, ``detectors`` scores
the clip vectors.
"""
