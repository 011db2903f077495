"""Building blocks shared by the backbones: token pooling, relative positions, memory attention."""
