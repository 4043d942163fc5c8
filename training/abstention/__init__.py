"""Teaching the audio model when not to answer: non-music made here, a music detector fitted
on the ensemble's own window descriptors, and the thresholds chosen on validation data."""
