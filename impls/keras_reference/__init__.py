"""keras-reference: the keras-io deep recommender program's own pipeline as an implementation."""
