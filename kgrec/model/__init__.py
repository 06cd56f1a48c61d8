"""The recommender model: text encoding, the knowledge-aware GNN, training and evaluation."""
