"""The pretrained musicnn tagger: reading its TensorFlow checkpoint and converting it to torch."""
