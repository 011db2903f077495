"""AVA v2.2: file formats, JPEG frame layout, keyframe clip dataset, datamodule, synthetic world."""
