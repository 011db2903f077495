"""Evaluation metrics: AVA frame-mAP@0.5 (official protocol), EK-100 accuracies, Breakfast mAP."""
