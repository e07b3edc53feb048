"""Model backends (transformers, VADER), the model catalogue and registry."""
