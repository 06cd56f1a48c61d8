"""Loaders: datasets into Neo4j, subgraphs out to PyTorch Geometric, results back into the graph."""
