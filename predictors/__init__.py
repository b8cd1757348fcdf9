"""Performance predictors (torch lives here and only here).

* :mod:`predictors.nnformer` — NN-Former (adjacency-sibling attention, bidirectional GIN FFN)
* :mod:`predictors.narformer2` — NAR-Former V2 (graph-aided attention, grouped FFN)
* :mod:`predictors.baselines` — MLP, GIN and random forest on one-hot cell encodings
* :mod:`predictors.training` — the shared fit loop; :mod:`predictors.graphs` — padded batches

Use them through the registry: ``nasloop.registry.make_predictor("nnformer", preset="fast", seed=0)``.
"""
