"""Optuna's TPE over the space's flat categorical view, through Optuna's ask/tell interface.

TPE learns from true results only. A proposal becomes a COMPLETE trial only when :meth:`tell` brings
its true value; proposals the predictor turns down (:meth:`TPEStrategy.discard`) and duplicate
suggestions end as FAIL trials, which TPE ignores. Results the strategy did not propose (the loop's
random warm-up) join the study through ``add_trial`` with their true values.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable
from typing import Any

from nasloop.space import SearchSpace
from nasloop.strategies.base import Strategy, unseen_samples

_PRIMITIVE = (str, int, float, bool, type(None))


class TPEStrategy(Strategy):
    """Tree-structured Parzen estimator (Optuna ``TPESampler``) as a search strategy.

    Args:
        space: the search space; its ``param_choices()`` become categorical distributions.
        seed: seeds the ``TPESampler`` and the fallback sampling.
        n_startup_trials: true results before TPE replaces random sampling (Optuna's default 10).
        multivariate: model the parameters jointly (edges of a cell interact).
        constant_liar: treat pending proposals as bad while asking a batch, so a pool is diverse.
        n_tries: suggestions per proposal; when all of them repeat known architectures, the proposal
            is a mutation of the last repeat (TPE's region, one edit away), else a random unseen one.
            Every repeat is a FAIL trial, so a converged TPE would otherwise fill the study with them.

    Attributes:
        study: the Optuna study; its COMPLETE trials are exactly the true results told so far.

    Example:
        >>> from nasloop.registry import make_space
        >>> tpe = TPEStrategy(make_space("nb201"), seed=0)
        >>> arch = tpe.ask(1)[0]
        >>> tpe.tell(arch, 90.0)
        >>> [t.value for t in tpe.study.trials]
        [90.0]
    """

    name = "tpe"

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int = 0,
        n_startup_trials: int = 10,
        multivariate: bool = True,
        constant_liar: bool = True,
        n_tries: int = 3,
    ) -> None:
        super().__init__(space, seed=seed)
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():  # multivariate / constant_liar are flagged experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.TPESampler(
                seed=int(seed) % 2**32,
                n_startup_trials=n_startup_trials,
                multivariate=multivariate,
                constant_liar=constant_liar,
            )
        self.study = optuna.create_study(direction="maximize", sampler=sampler)
        self.n_tries = n_tries
        self._choices = {k: list(v) for k, v in sorted(space.param_choices().items())}
        # Optuna stores primitive categories as they are; any other value goes in by its position.
        self._by_index = {k: not all(isinstance(c, _PRIMITIVE) for c in v) for k, v in self._choices.items()}
        self._dists = {
            k: optuna.distributions.CategoricalDistribution(list(range(len(v))) if self._by_index[k] else v)
            for k, v in self._choices.items()
        }
        self._pending: dict[Hashable, Any] = {}  # proposal → its RUNNING trial

    # --- the Strategy interface ------------------------------------------------------------------
    def ask(self, n: int) -> list[Hashable]:
        from optuna.trial import TrialState

        out: list[Hashable] = []
        taken = set(self.queried) | set(self._pending)
        for _ in range(n):
            arch, repeat = None, None
            for _ in range(self.n_tries):
                trial = self.study.ask(self._dists)
                candidate = self._arch(trial.params)
                if candidate is not None and candidate not in taken:
                    arch = candidate
                    break
                # A duplicate (or invalid) suggestion is no result: FAIL keeps it out of the model.
                self.study.tell(trial, state=TrialState.FAIL)
                repeat = candidate if candidate is not None else repeat
            if arch is None:  # TPE keeps repeating itself: step next to it, or anywhere unseen
                arch = self._near(repeat, taken)
                if arch is None:
                    break
            else:
                self._pending[arch] = trial
            out.append(arch)
            taken.add(arch)
        return out

    def tell(self, arch: Hashable, value: float) -> None:
        from optuna.trial import TrialState

        super().tell(arch, value)
        trial = self._pending.pop(arch, None)
        finite = math.isfinite(value)
        if trial is not None:
            if finite:
                self.study.tell(trial, float(value))
            else:
                self.study.tell(trial, state=TrialState.FAIL)
        elif finite:  # a true result the strategy did not propose (e.g. the random warm-up)
            import optuna

            self.study.add_trial(
                optuna.trial.create_trial(params=self._params(arch), distributions=self._dists, value=float(value))
            )

    def discard(self, arch: Hashable) -> None:
        from optuna.trial import TrialState

        trial = self._pending.pop(arch, None)
        if trial is not None:
            self.study.tell(trial, state=TrialState.FAIL)

    def _near(self, arch: Hashable | None, taken: set[Hashable]) -> Hashable | None:
        if arch is not None:
            for _ in range(10):
                child = self.space.mutate(arch, self.rng)
                if child not in taken:
                    return child
        extra = unseen_samples(self.space, self.rng, 1, exclude=taken)
        return extra[0] if extra else None

    # --- parameter view <-> Optuna values -----------------------------------------------------------
    def _params(self, arch: Hashable) -> dict[str, Any]:
        params = self.space.to_params(arch)
        return {k: self._choices[k].index(params[k]) if self._by_index[k] else params[k] for k in self._choices}

    def _arch(self, values: dict[str, Any]) -> Hashable | None:
        from nasloop.errors import InvalidArchitectureError

        params = {k: self._choices[k][v] if self._by_index[k] else v for k, v in values.items()}
        try:
            return self.space.from_params(params)
        except InvalidArchitectureError:
            return None
