"""The thin HTTP API over the graph."""
