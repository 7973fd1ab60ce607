"""LightningDataModules: synthetic sets (1-D Gaussian, ring, grid) and image data sets."""

from .synthetic import Gaussian1D, Grid2D, Ring2D, SyntheticDataModule

__all__ = ["Gaussian1D", "Grid2D", "Ring2D", "SyntheticDataModule"]
