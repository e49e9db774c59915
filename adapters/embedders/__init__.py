"""Embedders shipped with memeval (the `memeval.Embedder` protocol, LangChain-compatible)."""
