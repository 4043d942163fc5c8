"""Build-time tools: protoc stubs and the printed Open Inference Protocol contract."""
