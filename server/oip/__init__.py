"""The Open Inference Protocol (KServe v2, Triton's gRPC API) over the same registry and batchers
as genre.v1: the servicer, its tensor codecs, audio over ModelInfer and ModelStreamInfer, and the
per-model statistics Triton's clients ask for."""
