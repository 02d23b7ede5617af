"""Exact MaxSim scoring, MUVERA encodings, token pooling and the Voyager multi-vector index."""
