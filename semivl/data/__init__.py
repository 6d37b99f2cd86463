"""Datasets, split files, augmentations and the toy generator."""
