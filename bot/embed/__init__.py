"""Turn text into vectors: the embedder protocol, the bundled MiniLM and its ONNX export."""
