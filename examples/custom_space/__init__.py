"""A complete custom search space: MLP architectures trained on scikit-learn's digits."""
