"""NAS-Bench-101 cell space: 7-node cells, the official module hash, tables and .tfrecord reader."""

from search_spaces.nasbench101.space import OPS, Cell, NasBench101Space, hash_module, module_hash

__all__ = ["OPS", "Cell", "NasBench101Space", "hash_module", "module_hash"]
