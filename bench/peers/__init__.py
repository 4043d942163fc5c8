"""Other serving stacks measured beside ours: the same weights, client, run and process count.

Each peer gets a pinned venv of its own under ``bench/`` (git-ignored, made on first use by
``bench.peers.venv``), serves ``gtzan-features-mlp`` over the Open Inference Protocol (KServe v2
gRPC ``ModelInfer``, the very request body ``ours-v2`` gets) with its own dynamic batcher set to
ours's 256 rows and 5 ms, and runs our ``FeaturesRunner`` on the version's files
(``bench.peers.model``), so what differs between servers is the serving stack alone:

- ``bench.peers.triton``: Triton Inference Server 2.51 from the ``nvidia-pytriton`` 0.7.0 wheel,
  Python backend, N model instances.
- ``bench.peers.mlserver``: MLServer 1.7.1, adaptive batching, N parallel workers.

TorchServe (``bench.peers.torchserve``, ``bench.endpoints.TorchServe``) predates this package. A
peer that cannot be set up or started raises ``PeerUnavailable`` and the run records it as skipped.
This module stays free of imports: the peers' model code imports ``bench.peers.model`` inside
the peer's own Python.
"""
