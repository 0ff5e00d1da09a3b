"""Predictive, efficiency (parameters, FLOPs, latency) measures of a trained model."""
