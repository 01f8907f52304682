"""Plain-Python recommenders, search and learning to rank, evaluation and the model registry;
imports only features."""
