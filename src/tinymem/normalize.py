"""Pixel normalisation of video clips: a leaf module the data, the memory encoders and the
benchmarks all read."""

# SlowFast/MeMViT's Kinetics normalisation of RGB in [0, 1].
VIDEO_MEAN = (0.45, 0.45, 0.45)
VIDEO_STD = (0.225, 0.225, 0.225)
