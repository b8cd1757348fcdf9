"""Search spaces shipped with nasloop (each a subpackage implementing ``nasloop.space.SearchSpace``)."""
