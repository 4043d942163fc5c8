"""The genre-serve gRPC server: model repository, dynamic batching, metrics and logs."""
