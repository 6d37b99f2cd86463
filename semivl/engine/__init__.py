"""Training loops, evaluation, metrics, optimisers and checkpoints."""
