"""Shared streaming data (sampler, DataModule base, clip datasets, frame sources, decoding);
one folder per dataset: ava/, epic_kitchens/, breakfast/ (formats, dataset, datamodule, synthetic).
"""
