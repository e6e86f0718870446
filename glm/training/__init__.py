"""Training through PyTorch Lightning (the only package that imports it): data, module, Trainer, runs."""
