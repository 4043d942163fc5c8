"""Trains genre models and writes versioned checkpoints into the model repository."""
