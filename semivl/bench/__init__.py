"""``semivl bench``: what a training run costs, measured (throughput, memory, FLOPs, loaders,
evaluation, workflow overhead), and ``semivl plan``: GPU-hours of a grid from those numbers."""
