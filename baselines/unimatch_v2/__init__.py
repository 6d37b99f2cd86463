"""UniMatch V2's network (docs/upstream.md, UniMatch V2): a DINOv2 encoder and a DPT decoder."""

from baselines.unimatch_v2.dpt import DPTHead, UniMatchV2Net, build_unimatch_v2, complementary_masks

__all__ = ["DPTHead", "UniMatchV2Net", "build_unimatch_v2", "complementary_masks"]
