"""kgrec: knowledge-enhanced recommendations whose system of record is a Neo4j graph."""

__version__ = "0.1.0"
