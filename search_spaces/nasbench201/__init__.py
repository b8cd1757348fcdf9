"""NAS-Bench-201 cell space: the official arch string, 15,625 cells, graph conversions, tables."""

from search_spaces.nasbench201.space import OPS, NasBench201Space

__all__ = ["OPS", "NasBench201Space"]
