"""Searchers, one module per framework; only the retrieval worker imports them."""
