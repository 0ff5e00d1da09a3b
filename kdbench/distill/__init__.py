"""Distillation: models, the training loop, loss conventions, feature taps, in-graph Grad-CAM and the KD methods."""
