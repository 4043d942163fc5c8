"""What makes the forward pass cheaper on the device: fused MLP ensembles, CUDA graphs for the
audio models, and where a batch runs (inline on the event loop or on the inference thread)."""
