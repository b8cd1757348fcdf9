"""True evaluation of DARTS genotypes by training them, and the DARTS benchmark factory.

Data: a ``cifar-10-batches-py`` folder given by the user (read with a restricted unpickler that
builds only the dict, bytes, lists and uint8 array of the official batches; no torchvision, no
download), or by default scikit-learn's bundled 8x8 digits, so a DARTS search runs on a fresh machine.
A NASLib NAS-Bench-301 JSON (``--data nasbench301_725_surrogate_cifar10.json``) instead gives a table
of surrogate-predicted accuracies over its genotypes (for predictor checks; not trained results).
"""

from __future__ import annotations

import json
import logging
import math
import pickle
import time
from collections.abc import Callable, Hashable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from nasloop.benchmark import Benchmark, TabularBenchmark
from nasloop.errors import ConfigError, DataError, InvalidArchitectureError
from nasloop.types import Evaluation
from search_spaces.darts.space import DartsSpace, Genotype, from_compact

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (completed steps, total steps)
DATASETS = ("digits", "cifar10")
_CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
_CIFAR_STD = (0.2470, 0.2435, 0.2616)


@dataclass(frozen=True)
class TrainConfig:
    """How a genotype is trained. The defaults take about 10-20 s per genotype on digits on 2 CPU cores."""

    channels: int = 8  # initial channels C of the network
    layers: int = 5  # number of cells (reductions at 1/3 and 2/3 of the depth)
    epochs: int = 2
    batch_size: int = 64
    lr: float = 0.05  # SGD with momentum, cosine schedule to zero
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    drop_path: float = 0.0
    seed: int = 0  # same initialisation and batch order for every genotype
    n_train: int | None = None  # cap on training images (None: all of the split)
    n_val: int | None = None  # cap on validation images
    n_threads: int = 1  # torch threads while training; tiny networks run fastest on one (see train_and_evaluate)

    def __post_init__(self) -> None:
        for name in ("channels", "layers", "epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"DARTS training option {name} must be >= 1, got {getattr(self, name)}")
        if self.layers < 3:
            raise ConfigError(f"DARTS needs layers >= 3 (two reduction cells and a normal one), got {self.layers}")


@dataclass(frozen=True)
class ImageData:
    """Images as float tensors ``(N, C, H, W)`` and integer labels, split into train and validation."""

    name: str
    x_train: object = field(repr=False)
    y_train: object = field(repr=False)
    x_val: object = field(repr=False)
    y_val: object = field(repr=False)
    n_classes: int = 10
    augment: bool = False  # random horizontal flips during training (CIFAR, not digits)

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])  # type: ignore[attr-defined]


# --- data ---------------------------------------------------------------------------------------------------
def load_digits_data(*, n_train: int | None = None, n_val: int | None = None) -> ImageData:
    """scikit-learn's 1,797 8x8 digit images: a fixed stratified split, 2/3 train and 1/3 validation."""
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0 - 0.5) / 0.5  # (N, 8, 8) in [-1, 1]
    x_tr, x_va, y_tr, y_va = train_test_split(
        x, digits.target, test_size=1 / 3, random_state=0, stratify=digits.target
    )
    x_tr, y_tr = x_tr[:n_train], y_tr[:n_train]
    x_va, y_va = x_va[:n_val], y_va[:n_val]
    return ImageData(
        name="digits",
        x_train=torch.from_numpy(x_tr).unsqueeze(1), y_train=torch.from_numpy(y_tr).long(),  # (N, 1, 8, 8)
        x_val=torch.from_numpy(x_va).unsqueeze(1), y_val=torch.from_numpy(y_va).long(),
    )


def load_cifar10_dir(path: str | Path, *, n_train: int | None = None, n_val: int | None = None,
                     seed: int = 0) -> ImageData:
    """A ``cifar-10-batches-py`` folder: ``data_batch_1..4`` train, ``data_batch_5`` validation.

    The test batch is never read (searching on it would leak the report set). ``n_train`` /
    ``n_val`` take a fixed random subset (drawn with ``seed``).
    """
    import torch

    folder = Path(path).expanduser()
    files = [folder / f"data_batch_{i}" for i in range(1, 6)]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise DataError(
            f"{str(folder)!r} is not a cifar-10-batches-py folder: {', '.join(missing)} missing "
            "(download and unpack cifar-10-python.tar.gz, then give --data PATH/cifar-10-batches-py)"
        )
    batches = [_read_cifar_batch(f) for f in files]
    x_tr = np.concatenate([b[0] for b in batches[:4]])
    y_tr = np.concatenate([b[1] for b in batches[:4]])
    x_va, y_va = batches[4]
    rng = np.random.default_rng(seed)
    if n_train is not None and n_train < len(x_tr):
        keep = np.sort(rng.choice(len(x_tr), n_train, replace=False))
        x_tr, y_tr = x_tr[keep], y_tr[keep]
    if n_val is not None and n_val < len(x_va):
        keep = np.sort(rng.choice(len(x_va), n_val, replace=False))
        x_va, y_va = x_va[keep], y_va[keep]
    mean = np.asarray(_CIFAR_MEAN, dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(_CIFAR_STD, dtype=np.float32).reshape(1, 3, 1, 1)

    def to_tensor(raw: np.ndarray):
        images = raw.reshape(-1, 3, 32, 32).astype(np.float32) / 255.0  # (N, 3, 32, 32)
        return torch.from_numpy((images - mean) / std)

    return ImageData(
        name="cifar10", x_train=to_tensor(x_tr), y_train=torch.from_numpy(y_tr).long(),
        x_val=to_tensor(x_va), y_val=torch.from_numpy(y_va).long(), augment=True,
    )


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles the official CIFAR-10 python batches (a dict of bytes, lists and one uint8 array) and
    refuses every other class or function, so a crafted batch file cannot run code."""

    def find_class(self, module: str, name: str):
        allowed = _cifar_globals()
        if (module, name) in allowed:
            return allowed[(module, name)]
        raise pickle.UnpicklingError(f"it needs {module}.{name}, which a CIFAR-10 batch does not contain")


@lru_cache(maxsize=1)
def _cifar_globals() -> dict[tuple[str, str], object]:
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    allowed: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype, ("_codecs", "encode"): _latin1_encode,
    }
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = _reconstruct
    return allowed


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """``codecs.encode`` as protocol-2 pickles use it for bytes (latin-1 only: no other codec runs)."""
    if encoding != "latin1" or not isinstance(text, str):
        raise pickle.UnpicklingError(f"it encodes with {encoding!r}, which a CIFAR-10 batch does not")
    return text.encode("latin1")


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as fh:
            batch = _CifarUnpickler(fh, encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (OSError, pickle.UnpicklingError, KeyError, TypeError, ValueError, IndexError, EOFError,
            AttributeError, MemoryError, RecursionError) as exc:
        raise DataError(f"{path.name} is not a CIFAR-10 python batch (dict with b'data', b'labels'): {exc}") from None
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DataError(f"{path.name}: expected data of shape (N, 3072) and N labels, got {data.shape}")
    return data, labels


# --- training -----------------------------------------------------------------------------------------------------
def train_and_evaluate(genotype: Genotype, data: ImageData, config: TrainConfig = TrainConfig(), *,
                       progress: Progress | None = None) -> dict[str, float]:
    """Train ``genotype``'s network on ``data`` and measure it.

    Returns:
        ``val_acc`` and ``train_acc`` (percent; train accuracy over the last epoch's batches),
        ``train_time`` (seconds of training, excluding evaluation) and ``params`` (trainable count).

    Example:
        >>> from search_spaces.darts.space import DartsSpace
        >>> g = DartsSpace().sample(np.random.default_rng(0))
        >>> out = train_and_evaluate(g, load_digits_data(), TrainConfig(epochs=1))  # doctest: +SKIP
        >>> sorted(out)  # doctest: +SKIP
        ['params', 'train_acc', 'train_time', 'val_acc']
    """
    import torch

    genotype = DartsSpace()._check(genotype)
    n = len(data.y_train)  # type: ignore[arg-type]
    steps_per_epoch = math.ceil(n / config.batch_size)
    total = steps_per_epoch * config.epochs
    previous_threads = torch.get_num_threads()
    # Networks this small gain nothing from intra-op threads, and on a busy machine the threads'
    # synchronisation made a training step 40x slower (4.4 s vs 0.1 s on 2 shared cores).
    torch.set_num_threads(config.n_threads)
    try:
        return _train(genotype, data, config, progress, n, steps_per_epoch, total)
    finally:
        torch.set_num_threads(previous_threads)


def _train(genotype: Genotype, data: ImageData, config: TrainConfig, progress: Progress | None, n: int,
           steps_per_epoch: int, total: int) -> dict[str, float]:
    import torch

    from search_spaces.darts.network import DartsNetwork, NetworkConfig, count_parameters

    with torch.random.fork_rng(devices=[]):  # own randomness: the global torch RNG is left untouched
        torch.manual_seed(config.seed)
        net = DartsNetwork(genotype, NetworkConfig(
            channels=config.channels, layers=config.layers, in_channels=data.in_channels,
            n_classes=data.n_classes, drop_path=config.drop_path,
        ))
        # The GPU a Dask worker holds (CUDA_VISIBLE_DEVICES), whenever there is one; else the CPU.
        device = training_device()
        net.to(device)
        gen = torch.Generator().manual_seed(config.seed)
        opt = torch.optim.SGD(net.parameters(), lr=config.lr, momentum=config.momentum,
                              weight_decay=config.weight_decay, nesterov=True)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
        loss_fn = torch.nn.CrossEntropyLoss()
        start = time.perf_counter()
        step = correct = seen = 0
        for _epoch in range(config.epochs):
            net.train()
            correct = seen = 0
            order = torch.randperm(n, generator=gen)
            for b in range(steps_per_epoch):
                idx = order[b * config.batch_size : (b + 1) * config.batch_size]
                x, y = data.x_train[idx], data.y_train[idx]  # type: ignore[index]
                if data.augment:
                    flip = torch.rand(len(idx), generator=gen) < 0.5
                    x = torch.where(flip[:, None, None, None], x.flip(3), x)  # (B, C, H, W)
                x, y = x.to(device), y.to(device)
                logits = net(x)  # (B, n_classes)
                loss = loss_fn(logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
                opt.step()
                sched.step()
                correct += int((logits.argmax(1) == y).sum())
                seen += len(idx)
                step += 1
                if progress is not None:
                    progress(step, total)
        train_time = time.perf_counter() - start
        _recalibrate_batchnorm(net, data.x_train, order, config.batch_size, device=device)
        val_acc = _accuracy(net, data.x_val, data.y_val, config.batch_size * 4, device=device)
    return {
        "val_acc": 100.0 * val_acc,
        "train_acc": 100.0 * correct / max(seen, 1),
        "train_time": train_time,
        "params": float(count_parameters(net)),
    }


def training_device() -> str:
    """``cuda`` when torch sees a GPU (on a Dask worker started with one), else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _recalibrate_batchnorm(net, x, order, batch_size: int, max_images: int = 2048, *, device: str = "cpu") -> None:
    """Re-estimate BatchNorm statistics with the final weights (a plain average over up to
    ``max_images`` training images). After a few hundred steps the running averages still lag far
    behind the weights, which makes evaluation-mode accuracy a poor, noisy signal."""
    import torch

    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the calibration batches
    net.train()
    with torch.no_grad():
        for b in range(0, min(len(order), max_images), batch_size):
            net(x[order[b : b + batch_size]].to(device))


def _accuracy(net, x, y, batch_size: int, *, device: str = "cpu") -> float:
    import torch

    net.eval()
    correct = 0
    with torch.no_grad():
        for b in range(0, len(y), batch_size):
            logits = net(x[b : b + batch_size].to(device))
            correct += int((logits.argmax(1).cpu() == y[b : b + batch_size]).sum())
    return correct / max(len(y), 1)


# --- benchmarks ------------------------------------------------------------------------------------------------------
class DartsTrainingBenchmark(Benchmark):
    """The oracle that trains every queried genotype (cost = training seconds).

    Set ``progress`` to a callable ``(completed, total)`` to follow each training (the CLI draws a
    bar with it); it is called once per training step.
    """

    metrics = ("val_acc", "train_acc", "params", "train_time")

    def __init__(self, data: ImageData, config: TrainConfig = TrainConfig(), *, label: str | None = None) -> None:
        self.space = DartsSpace()
        self.data = data
        self.config = config
        self.progress: Progress | None = None
        n_tr, n_va = len(data.y_train), len(data.y_val)  # type: ignore[arg-type]
        self.label = label or (
            f"DARTS trained on {data.name} ({n_tr} train / {n_va} val images; C={config.channels}, "
            f"{config.layers} cells, {config.epochs} epochs, batch {config.batch_size})"
        )

    def query(self, arch: Hashable) -> Evaluation:
        result = train_and_evaluate(arch, self.data, self.config, progress=self.progress)  # type: ignore[arg-type]
        return Evaluation(result, cost=result["train_time"])

    def options(self) -> dict:
        return asdict(self.config)


class DartsTable(TabularBenchmark):
    """A table over DARTS genotypes; queries match up to the order of a node's two edges."""

    def row_of(self, arch: Hashable) -> int:
        return super().row_of(self.space.canonical(arch))


def load_surrogate_table(path: str | Path) -> DartsTable:
    """NASLib's NAS-Bench-301 export ``{"cifar10": {compact: {"val_accuracy": ..., ...}}}``.

    ``val_acc`` is the NAS-Bench-301 surrogate's *prediction*, not a trained result. The table's
    ``space`` is restricted to its genotypes.
    """
    path = Path(path)
    try:
        with open(path) as fh:
            table = json.load(fh)["cifar10"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path.name} is not a NASLib NAS-Bench-301 JSON (cifar10 → genotypes): {exc}") from None
    if not isinstance(table, dict):
        raise DataError(f"{path.name}: cifar10 must map compact genotypes to their values")
    archs, columns = [], {}
    for compact, values in table.items():
        try:
            genotype = from_compact(compact)
        except InvalidArchitectureError as exc:
            raise DataError(f"{path.name}: {exc}") from None
        if not isinstance(values, dict):
            raise DataError(f"{path.name}: the values of genotype {compact} are not a JSON object")
        archs.append(DartsSpace().canonical(genotype))
        for name, value in values.items():
            if isinstance(value, dict):  # zero-cost proxies: {"score": ..., "time": ...}
                value = value.get("score")
            if name in ("idx", "arch"):
                continue
            key = "val_acc" if name == "val_accuracy" else name
            number = float(value) if isinstance(value, int | float) else math.nan
            if isinstance(value, int | float) and not math.isfinite(number):
                raise DataError(f"{path.name}: genotype {compact} has {name} = {value!r}, expected a finite number")
            columns.setdefault(key, []).append(number)
    if len(set(archs)) != len(archs):
        raise DataError(f"{path.name} lists some genotypes twice")
    return DartsTable(
        DartsSpace(pool=archs), archs, columns,
        label=f"NAS-Bench-301 surrogate predictions, CIFAR-10, {len(archs)} genotypes ({path.name}; not trained)",
    )


@lru_cache(maxsize=2)
def _digits(n_train: int | None, n_val: int | None) -> ImageData:
    return load_digits_data(n_train=n_train, n_val=n_val)


def load_benchmark(data: str | None = None, dataset: str | None = None, *, channels: int = 8, layers: int = 5,
                   epochs: int = 2, batch_size: int = 64, seed: int = 0, n_train: int | None = None,
                   n_val: int | None = None) -> Benchmark:
    """The DARTS benchmark: real training, or a surrogate table for a ``.json`` file.

    Args:
        data: a ``cifar-10-batches-py`` folder (trains on CIFAR-10), a NAS-Bench-301 ``.json`` table,
            or ``None`` for scikit-learn's digits.
        dataset: ``digits`` or ``cifar10`` (inferred from ``data`` when omitted).
        channels, layers, epochs, batch_size, seed, n_train, n_val: see :class:`TrainConfig`.

    Example:
        >>> bench = load_benchmark(epochs=1)
        >>> bench.metrics
        ('val_acc', 'train_acc', 'params', 'train_time')
    """
    if dataset not in (None, *DATASETS):
        raise ConfigError(f"DARTS datasets are {', '.join(DATASETS)}, not {dataset!r}")
    if data is not None and Path(data).suffix == ".json":
        if not Path(data).is_file():
            raise DataError(f"--data file {data!r} does not exist")
        return load_surrogate_table(data)
    config = TrainConfig(channels=channels, layers=layers, epochs=epochs, batch_size=batch_size, seed=seed,
                         n_train=n_train, n_val=n_val)
    if data is None:
        if dataset == "cifar10":
            raise ConfigError("CIFAR-10 is read from disk: give --data PATH/cifar-10-batches-py")
        return DartsTrainingBenchmark(_digits(n_train, n_val), config)
    if dataset == "digits":
        raise ConfigError("the digits are bundled with scikit-learn: drop --data, or use --dataset cifar10")
    if not Path(data).is_dir():
        raise DataError(f"--data {data!r} is not a folder; expected PATH/cifar-10-batches-py (or a .json table)")
    return DartsTrainingBenchmark(load_cifar10_dir(data, n_train=n_train, n_val=n_val, seed=seed), config)
