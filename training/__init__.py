"""Training recipe for matte-sdk's embedded default model: procedural data, training loop, evaluation."""
