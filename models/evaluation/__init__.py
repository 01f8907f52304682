"""Offline evaluation: splits, metrics, tuning and the evaluate runner."""
