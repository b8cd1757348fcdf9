"""Write a small NAS-Bench-201 ``.pth`` file in the official format (for tests only).

It uses the ``nas_201_api`` classes themselves, so the structure is exactly what the official API
reads: ``meta_archs``, ``evaluated_indexes`` and ``arch2infos[index]["less"|"full"]`` holding
``ArchResults`` state dicts with one ``ResultsCount`` per (dataset, seed).
"""

from __future__ import annotations

from pathlib import Path

import torch
from nas_201_api.api_utils import ArchResults, ResultsCount

EVAL_SETS = {
    "cifar10-valid": ("x-valid", "ori-test"),
    "cifar10": ("ori-test",),
    "cifar100": ("x-valid", "x-test", "ori-test"),
    "ImageNet16-120": ("x-valid", "x-test", "ori-test"),
}


def accuracy(index: int, dataset: str, setname: str, seed: int, epochs: int) -> float:
    """A deterministic, distinct accuracy for every (cell, dataset, split, seed, schedule)."""
    base = {"cifar10-valid": 80.0, "cifar10": 85.0, "cifar100": 60.0, "ImageNet16-120": 30.0}[dataset]
    return base + index * 0.5 + (1.0 if setname.endswith("test") else 0.0) + seed * 0.01 + epochs * 0.001


def _arch_results(index: int, arch: str, epochs: int, seeds: tuple[int, ...]) -> dict:
    results = ArchResults(index, arch)
    for dataset, sets in EVAL_SETS.items():
        results.dataset_seed[dataset] = list(seeds)
        for seed in seeds:
            rc = ResultsCount(dataset, None, {e: 50.0 + e for e in range(epochs)}, {e: 1.0 for e in range(epochs)},
                              0.5, 80.0, {"arch_str": arch}, seed, epochs, None)
            rc.update_train_info(rc.train_acc1es, None, rc.train_losses, {e: 10.0 for e in range(epochs)})
            accs, losses, times = {}, {}, {}
            for name in sets:
                for e in range(epochs):
                    key = f"{name}@{e}"
                    accs[key] = accuracy(index, dataset, name, seed, epochs) - (epochs - 1 - e)
                    losses[key], times[key] = 0.5, 1.0
            rc.update_eval(accs, losses, times)
            results.all_results[(dataset, seed)] = rc
    return results.state_dict()


def write_official_file(path: Path, indices: list[int], *, seeds: tuple[int, ...] = (777, 888)) -> Path:
    """Like the official file: all 15,625 ``meta_archs``, results for the cells at ``indices``."""
    from search_spaces.nasbench201.space import NasBench201Space

    space = NasBench201Space()
    meta_archs = [space.to_str(a) for a in space.enumerate()]
    arch2infos = {
        i: {"less": _arch_results(i, meta_archs[i], 12, seeds), "full": _arch_results(i, meta_archs[i], 200, seeds)}
        for i in indices
    }
    torch.save({"meta_archs": meta_archs, "arch2infos": arch2infos, "evaluated_indexes": list(indices)}, path)
    return path
