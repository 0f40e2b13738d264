"""scikit-learn's own estimator checks, with no expected failures."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skdeep import MLPClassifier, MLPRegressor, StackedAutoencoder
from skdeep.schedules import OneCycle


@parametrize_with_checks(
    [
        MLPClassifier(),
        MLPRegressor(),
        MLPClassifier(solver="sgd", learning_rate_init=0.01, class_weight="balanced"),
        MLPClassifier(solver="lbfgs", hidden_layer_sizes=(8, 8), activation="tanh"),
        MLPRegressor(solver="lbfgs", hidden_layer_sizes=(8, 8), activation="logistic"),
        # the chapter's toolkit, optimizers and schedules switched on
        MLPClassifier(activation="elu", batch_norm="before", dropout=0.1),
        MLPRegressor(
            activation="leaky_relu", batch_norm="after", kernel_initializer="he_normal",
            solver="nadam", learning_rate=OneCycle(0.01),
        ),
        MLPClassifier(
            activation="selu", kernel_initializer="lecun_normal", alpha=0.0, dropout=0.05,
            alpha_dropout=True, clipnorm=1.0, solver="rmsprop",
        ),
        StackedAutoencoder(hidden_layer_sizes=(8, 4), max_iter=20),
        StackedAutoencoder(hidden_layer_sizes=(6, 3), activation="tanh", noise=0.2, max_iter=20),
    ]
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
