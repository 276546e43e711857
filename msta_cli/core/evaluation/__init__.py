"""Evaluation: multi-view testing, metrics, result files and protocol tables."""
