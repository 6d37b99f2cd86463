"""SemiVL benchmark: semi-supervised semantic segmentation with vision-language guidance."""

__version__ = "0.1.0"
