"""The HTTP service: FastAPI app, schemas, observability, index maintenance, watch, workers, web page."""
