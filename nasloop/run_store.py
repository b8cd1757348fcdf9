"""The run store: everything of a run that lives in its directory, behind one object.

The driver (:mod:`nasloop.engine`) never touches a file: it hands new results and round rows to the
store, asks it what the journal of a resumed run says, and lets it save and load predictor
snapshots. :class:`RunStore` keeps nothing on disk (``out=None`` runs, studies in memory);
:class:`DirectoryStore` writes ``history.jsonl`` (one line per query, flushed at once),
``rounds.jsonl``, ``submitted.jsonl`` (parallel runs) and the snapshot ``predictor.pt`` +
``predictor.json``, and on resume reads them back.

Replay: a resumed run starts from the beginning with the records of ``history.jsonl`` as a journal.
Each query the loop makes is first answered from the journal (:meth:`RunStore.replayed`: the
journal's record ``n``, checked to be the same architecture in the same round); where the journal
ends the benchmark is asked. Every random stream is derived from the seed, so the strategy, the
predictor (warm starts included) and the round generators come out in the state the uninterrupted run
had. Everything is read once when the store opens; nothing is read per query.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from nasloop import rundir
from nasloop.errors import ConfigError
from nasloop.history import JsonlWriter, read_history, read_jsonl
from nasloop.types import Record

log = logging.getLogger(__name__)

SUBMITTED = "submitted.jsonl"  # a parallel run's submissions, in order: what a killed driver had in flight


class Snapshots:
    """The predictor after its latest fit, as tensors (``predictor.pt``) plus JSON (``predictor.json``).

    Resume loads it instead of redoing the fits of the finished rounds. Nothing executable is read:
    the tensors load with ``torch.load(weights_only=True)`` into the predictor the run builds from its
    registered name, through the predictor's ``restore_state``. Only :class:`~nasloop.predictor.Predictor`
    subclasses that declare ``supports_snapshots`` (the torch models) keep one; the others (the random
    forest, duck-typed plug-ins) are refitted fit by fit instead, which gives the same state because
    fits are deterministic. The JSON records the SHA-256 of the tensor file; a pair that does not match
    (a kill between the two renames) is ignored.

    Args:
        directory: the run directory.
    """

    TENSORS, META = "predictor.pt", "predictor.json"

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    @staticmethod
    def supported(predictor: Any) -> bool:
        from nasloop.predictor import Predictor

        return isinstance(predictor, Predictor) and predictor.supports_snapshots

    def save(self, n_fits: int, predictor: Any) -> None:
        import hashlib
        import io

        state = predictor.snapshot_state() if self.supported(predictor) else None
        if state is None:
            return
        import torch

        tensors, meta = state
        buffer = io.BytesIO()
        torch.save(tensors, buffer)
        blob = buffer.getvalue()
        tmp = self.directory / f".{self.TENSORS}.tmp"
        tmp.write_bytes(blob)
        os.replace(tmp, self.directory / self.TENSORS)
        rundir.atomic_write_json(self.directory / self.META,
                                 {"n_fits": n_fits, "sha256": hashlib.sha256(blob).hexdigest(), "state": meta})

    def load_into(self, predictor: Any, max_fits: int) -> int:
        """Restore the snapshot into ``predictor``; the number of fits it holds (0: nothing loaded)."""
        import hashlib
        import io

        if not self.supported(predictor):
            return 0
        try:
            meta = json.loads((self.directory / self.META).read_text(encoding="utf-8"))
            blob = (self.directory / self.TENSORS).read_bytes()
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as exc:
            log.warning("ignoring the predictor snapshot in %s (%s)", self.directory, exc)
            return 0
        n_fits = meta.get("n_fits") if isinstance(meta, dict) else None
        if not isinstance(n_fits, int) or not 0 < n_fits <= max_fits \
                or meta.get("sha256") != hashlib.sha256(blob).hexdigest():
            return 0
        import torch

        try:
            tensors = torch.load(io.BytesIO(blob), weights_only=True, map_location="cpu")
            predictor.restore_state(tensors, meta["state"])
        except Exception as exc:  # a damaged or foreign snapshot: refitting is always possible
            log.warning("ignoring the predictor snapshot in %s (%s: %s)", self.directory, type(exc).__name__, exc)
            return 0
        return n_fits


class RunStore:
    """A run kept in memory: no journal, nothing written. :class:`DirectoryStore` adds the files.

    Attributes:
        journal: the records of a resumed run, in order (empty for a new run).
        logged_rounds: the last round ``rounds.jsonl`` already holds (-1: none); the driver logs
            every round again while it replays, and only later rows are written.
        logged_fit_s: fitting seconds of earlier processes of a resumed run (``rounds.jsonl``'s
            ``fit_s`` is cumulative).
        in_flight: submissions a killed parallel driver left unfinished (``submitted.jsonl``).
    """

    def __init__(self) -> None:
        self.journal: list[Record] = []
        self.logged_rounds = -1
        self.logged_fit_s = 0.0
        self.in_flight: list[dict[str, Any]] = []

    # --- what a resumed run knows ---------------------------------------------------------------------
    @property
    def resumed(self) -> bool:
        return bool(self.journal)

    def replayed(self, n: int, key: str, round_: int) -> Record | None:
        """The journal's record ``n`` (0-based), checked to be ``key`` picked in ``round_``; ``None``
        past the journal's end (the benchmark answers)."""
        if n >= len(self.journal):
            return None
        rec = self.journal[n]
        if rec.arch != key or rec.round != round_:
            raise ConfigError(
                f"resume diverged at query {n + 1}: the run now picks {key} in round {round_}, the "
                f"history has {rec.arch} in round {rec.round}; the data or code changed since the "
                "run started, so start a new run"
            )
        return rec

    def completed(self, n: int, key: str, submitted: int) -> Record | None:
        """Like :meth:`replayed` for a parallel run, whose results arrive in completion order: the
        journal's record ``n`` checked to be ``key`` from submission ``submitted``."""
        if n >= len(self.journal):
            return None
        known = self.journal[n]
        if known.arch != key or known.extra.get("submitted") != submitted:
            raise ConfigError(
                f"resume diverged at query {n + 1}: the run now completes {key} (submission "
                f"{submitted}), the history has {known.arch}; the data or code changed since the run "
                "started, so start a new run")
        return known

    def journaled_round(self, start: int, k: int, round_: int) -> list[Record] | None:
        """The ``k`` records of round ``round_`` from query ``start`` on, when the journal holds all of
        them (``None`` otherwise: the round runs live)."""
        rows = [r for r in self.journal[start: start + k] if r.round == round_]
        return rows if rows and len(rows) == k else None

    # --- what the run writes ----------------------------------------------------------------------------
    def append_record(self, rec: Record) -> None:
        """A new true result (``history.jsonl``)."""

    def append_round(self, row: dict[str, Any]) -> None:
        """A finished round's row (``rounds.jsonl``), unless an earlier process logged it."""

    def append_submission(self, row: dict[str, Any]) -> None:
        """A parallel run's submission (``submitted.jsonl``)."""

    def save_snapshot(self, n_fits: int, predictor: Any) -> None:
        """The predictor after its ``n_fits``-th fit."""

    def load_snapshot(self, predictor: Any, max_fits: int) -> int:
        """Restore the latest snapshot into ``predictor``; the fits it holds (0: none)."""
        return 0

    def close(self) -> None:
        """Close the journals (the run ended or failed)."""


class DirectoryStore(RunStore):
    """A run in its directory (``config.json`` already written; the run's lock held by the caller).

    Args:
        run_dir: the run directory.
        resume: read the journals back (``--resume``).
        n_queries: the run's query budget now.
        stored_budget: the budget ``config.json`` records (resume; another one is a budget change).
        parallel: a parallel run (its budget cannot change on resume).
        submissions: keep ``submitted.jsonl`` (parallel runs on real workers: a resume submits again
            what a killed driver had in flight).
        snapshots: keep predictor snapshots (serial runs with a predictor).
    """

    def __init__(self, run_dir: Path, *, resume: bool, n_queries: int, stored_budget: Any = None,
                 parallel: bool = False, submissions: bool = False, snapshots: bool = False) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        if resume:
            self._open_journal(n_queries, stored_budget, parallel)
        self.snapshots = Snapshots(self.run_dir) if snapshots else None
        self.history = JsonlWriter(self.run_dir / rundir.HISTORY)
        self.rounds = JsonlWriter(self.run_dir / rundir.ROUNDS)
        self.submissions: JsonlWriter | None = None
        if submissions:
            self._open_submissions()

    def _open_journal(self, n_queries: int, stored_budget: Any, parallel: bool) -> None:
        path = self.run_dir / rundir.HISTORY
        self.journal = read_history(path) if path.exists() else []
        if stored_budget != n_queries:
            if parallel:
                raise ConfigError(f"{self.run_dir} is a parallel run; its budget ({stored_budget}) cannot change "
                                  "on resume (what was in flight depends on it)")
            change_budget(self.run_dir, stored_budget, n_queries, self.journal)
        if len(self.journal) < n_queries:
            drop_last_round_rows(self.run_dir, self.journal)
        logged = read_jsonl(self.run_dir / rundir.ROUNDS)
        self.logged_rounds = max((int(r["round"]) for r in logged), default=-1)
        # rounds.jsonl's fit_s is cumulative: rows this process adds continue from the last kept one.
        self.logged_fit_s = max((float(r.get("fit_s") or 0.0) for r in logged), default=0.0)

    def _open_submissions(self) -> None:
        path = self.run_dir / SUBMITTED
        if self.journal:
            done = {r.arch for r in self.journal}
            self.in_flight = [row for row in read_jsonl(path) if row.get("arch") not in done]
        self.submissions = JsonlWriter(path)

    def append_record(self, rec: Record) -> None:
        self.history.append(rec.to_json())

    def append_round(self, row: dict[str, Any]) -> None:
        if row["round"] > self.logged_rounds:
            self.rounds.append(row)

    def append_submission(self, row: dict[str, Any]) -> None:
        if self.submissions is not None:
            self.submissions.append(row)

    def save_snapshot(self, n_fits: int, predictor: Any) -> None:
        if self.snapshots is not None:
            self.snapshots.save(n_fits, predictor)

    def load_snapshot(self, predictor: Any, max_fits: int) -> int:
        return 0 if self.snapshots is None else self.snapshots.load_into(predictor, max_fits)

    def close(self) -> None:
        for writer in (self.history, self.rounds, self.submissions):
            if writer is not None:
                writer.close()


def change_budget(run_dir: Path, stored_budget: Any, n_queries: int, journal: list[Record]) -> None:
    """Give a resumed run another query budget (``--resume DIR --budget N``).

    Every decision before the old budget ran out is one the run would also have made with the new
    budget, except in a last round cut short by it, and the replay finishes that round live. So the
    extended run's history is the one a run started with the new budget would have.
    """
    if len(journal) > n_queries:
        raise ConfigError(f"{run_dir} already holds {len(journal)} queries (its budget was {stored_budget}); "
                          f"resume it with --budget {len(journal)} or more")
    # The summary describes the shorter run; the new one is written when the run ends.
    (run_dir / rundir.SUMMARY).unlink(missing_ok=True)
    config = rundir.read_config(run_dir)  # as written, without the defaults filled in on reading
    rundir.atomic_write_json(run_dir / rundir.CONFIG, {**config, "budget": n_queries})
    log.info("%s: budget %s -> %d queries", run_dir, stored_budget, n_queries)


def drop_last_round_rows(run_dir: Path, journal: list[Record]) -> None:
    """Before a run goes on, forget the ``rounds.jsonl`` rows of its last journaled round and later.

    That round may be unfinished (killed mid-round) or cut short by a smaller budget; the replay logs
    it again once it is complete. Rewritten atomically, so a kill here loses nothing.
    """
    path = run_dir / rundir.ROUNDS
    if not journal or not path.exists():
        return
    rows = read_jsonl(path)
    keep = [row for row in rows if int(row["round"]) < journal[-1].round]
    if len(keep) < len(rows):
        rundir.atomic_write_text(path, "".join(json.dumps(row) + "\n" for row in keep))
