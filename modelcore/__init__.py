"""What a model version is and computes, torch only, shared by training and serving: the
checkpoint format (safetensors plus a checksummed JSON manifest), the architectures, the log-mel
front-end and the feature preprocessing. It imports neither pandas nor ``training`` nor
``server``, so the server can depend on it alone."""
