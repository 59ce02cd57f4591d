"""Build, store and load index generations: passages, vectors, keyword matrices, ANN."""
