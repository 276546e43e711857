"""Prediction with trained, exported or zero-shot models, and exports for other runtimes."""
