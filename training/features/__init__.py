"""The features track: tabular data sets, the MLP (and trees) procedure, cross-validation and
publishing."""
