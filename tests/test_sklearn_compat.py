"""scikit-learn's own estimator checks on the package's estimators."""

from conftest import random_noun_bank
from sklearn.utils.estimator_checks import parametrize_with_checks

from skgradnorm import GradNormNounSelector, LanguageAssistedClusterer, MutualDistillationClusterer

# The checks fit on data with 1 to 10 features, so the noun bank is given as a callable
# (like KMeans(init=callable)) that returns a bank of the data's dimension at fit time.
ZERO_ROW_REASON = (
    "the check casts random data to int, which creates an all-zero row; a zero vector "
    "has no direction for cosine similarity, so fit raises a clear ValueError instead "
    "(integer input without zero rows is accepted, see test_integer_input_is_accepted)"
)


HEAD_WIDTH_REASON = (
    "the check wants ARI > 0.4 on 50 two-feature blobs; TAC's heads have a hidden layer as "
    "wide as the input (2 ReLU units here) and one batch per epoch, so a few epochs leave "
    "them collapsed on one cluster (with 64 hidden units and 20 epochs they reach ARI 0.57)"
)


def _expected_failed_checks(estimator):
    failed = {"check_estimators_dtypes": ZERO_ROW_REASON}
    if isinstance(estimator, MutualDistillationClusterer):
        failed["check_clustering"] = HEAD_WIDTH_REASON
    return failed


@parametrize_with_checks(
    [
        GradNormNounSelector(random_noun_bank, n_centers=2, top_k=2, n_init=2, random_state=0),
        LanguageAssistedClusterer(
            n_clusters=2,
            selector=GradNormNounSelector(random_noun_bank, n_centers=2, n_init=2, random_state=0),
            n_init=2,
            random_state=0,
        ),
        MutualDistillationClusterer(
            n_clusters=2,
            selector=GradNormNounSelector(random_noun_bank, n_centers=2, n_init=2, random_state=0),
            n_neighbors=3,
            n_epochs=5,
            random_state=0,
            device="cpu",
        ),
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_integer_input_is_accepted():
    import numpy as np

    X = np.arange(1, 41).reshape(20, 2) % 7 + 1
    labels = (
        LanguageAssistedClusterer(
            2,
            selector=GradNormNounSelector(random_noun_bank, n_centers=3, random_state=0),
            random_state=0,
        )
        .fit(X)
        .labels_
    )
    assert labels.shape == (20,) and set(labels.tolist()) == {0, 1}
