"""Training (pure PyTorch and scikit-learn, no Kedro): configuration assembled from parameters
(:mod:`.params`), the trainer (:mod:`.trainer`: ``fit`` / ``predict``), the logistic regression
of the linear member and the baselines (:mod:`.logreg`) and versioned checkpoints
(:mod:`.checkpoint`)."""
