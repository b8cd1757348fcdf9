"""DARTS cell space: genotypes (official string, NASLib compact form), predictor graph, and a real
training evaluator (network.py, train.py; torch is imported only there)."""

from search_spaces.darts.space import OPS, DartsSpace, Genotype, from_compact, to_compact

__all__ = ["OPS", "DartsSpace", "Genotype", "from_compact", "to_compact"]
