"""Breakfast: file formats and splits, task A/B clip datasets, datamodule, synthetic world."""
