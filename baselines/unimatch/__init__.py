"""UniMatch baseline network: DeepLabV3+ on ResNet backbones."""

from baselines.unimatch.deeplabv3plus import DeepLabV3Plus

__all__ = ["DeepLabV3Plus"]
