"""Scoring pooled LOSO predictions: metrics, per-subject tables, figures, the summary with the
published numbers."""
