"""LightningDataModules: synthetic sets (1-D Gaussian, ring, grid), MNIST, CelebA, image folders, unpaired domains."""

from .images import CelebADataModule, ImageFolderDataModule
from .mnist import MNISTDataModule
from .stacked_mnist import StackedMNIST
from .synthetic import Gaussian1D, Grid2D, RandomImages, Ring2D, SyntheticDataModule
from .unpaired import DigitsDataModule, UCIDigitsDataModule, UnpairedImageDataModule

__all__ = ["CelebADataModule", "Gaussian1D", "Grid2D", "ImageFolderDataModule", "MNISTDataModule", "RandomImages",
           "Ring2D", "StackedMNIST", "SyntheticDataModule"]
__all__ += ["DigitsDataModule", "UCIDigitsDataModule", "UnpairedImageDataModule"]
