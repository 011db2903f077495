"""Epic-Kitchens-100: file formats, segment clip dataset, datamodule, synthetic world."""
