"""scikit-learn's own estimator checks, with no expected failures."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skdeep import MLPClassifier, MLPRegressor


@parametrize_with_checks(
    [
        MLPClassifier(),
        MLPRegressor(),
        MLPClassifier(solver="sgd", learning_rate_init=0.01, class_weight="balanced"),
        MLPClassifier(solver="lbfgs", hidden_layer_sizes=(8, 8), activation="tanh"),
        MLPRegressor(solver="lbfgs", hidden_layer_sizes=(8, 8), activation="logistic"),
    ]
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
