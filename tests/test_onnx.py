"""ONNX export: onnxruntime reproduces skdeep's predictions (skipped without the onnx extra).

Every hidden activation x batch-norm placement x output head, in float64 and
float32 graphs. The models are tiny and trained for a few epochs; their batch
norm and PReLU parameters are then overwritten in place with random values
(the estimator predicts from them), so folding batch norm into the weights
is tested on statistics far from their initial 0 / 1.
"""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

pytest.importorskip("onnx")
skl2onnx = pytest.importorskip("skl2onnx")
rt = pytest.importorskip("onnxruntime")

from skdeep import MLPClassifier, MLPRegressor, StackedAutoencoder  # noqa: E402
from skdeep import onnx as skdeep_onnx  # noqa: E402

RNG = np.random.RandomState(0)
X = RNG.randn(30, 4) * [1.0, 2.0, 0.5, 3.0] + [0.0, 1.0, -2.0, 0.5]
Y = {
    "softmax": np.digitize(X[:, 0], [-0.4, 0.4]),
    "binary": (X[:, 0] + X[:, 1] > 1).astype(int),
    "multilabel": np.column_stack([X[:, 0] > 0, X[:, 1] > 1, X[:, 2] < -2]).astype(int),
    "identity": X[:, 0] - X[:, 3],
    "multi_output": np.column_stack([X[:, 0] - X[:, 3], X[:, 1] * X[:, 2]]),
    "poisson": np.exp(0.3 * X[:, 0]),
}
ACTIVATIONS = [
    "identity", "logistic", "tanh", "relu", "leaky_relu", "rrelu", "prelu", "elu", "selu", "gelu", "swish",
]
#: Hidden batch norm, and whether the inputs are batch-normalized too.
BATCH_NORM = [(None, False), ("before", True), ("after", True)]
#: float32 graphs of float64 models: probabilities within this (the issue's bound).
FLOAT32_ATOL = 1e-5


def _fit(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(X, y)
    rng = np.random.RandomState(1)
    for array in (*estimator.batch_norm_gamma_, *estimator.batch_norm_beta_, *estimator.batch_norm_moving_mean_):
        array[...] = rng.uniform(-1.5, 1.5, array.shape)
    for array in (*estimator.batch_norm_moving_var_, *estimator.prelu_alpha_):
        array[...] = rng.uniform(0.1, 2.0, array.shape)
    return estimator


def _model(head, activation, batch_norm, batch_norm_input, dtype=np.float64):
    params = dict(
        hidden_layer_sizes=(5, 3), activation=activation, batch_norm=batch_norm,
        batch_norm_input=batch_norm_input, dropout=0.1, alpha_dropout=activation == "selu",
        max_iter=3, learning_rate_init=0.01, random_state=0,
    )
    if head in ("softmax", "binary", "multilabel"):
        estimator = MLPClassifier(**params)
    else:
        estimator = MLPRegressor(loss="poisson" if head == "poisson" else "squared_error", **params)
    return _fit(estimator, X.astype(dtype), Y[head])


def _run(onx, X):
    session = rt.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: X})


def _check(model, head, activation):
    for dtype in (np.float64, np.float32):
        options = {"zipmap": False} if isinstance(model, MLPClassifier) else None
        onx = skdeep_onnx.to_onnx(model, dtype, options=options)
        outputs = _run(onx, X.astype(dtype))
        # float64: ONNX Runtime's erf is float32 only, so GELU's float64 graph is 1e-8 off
        atol = FLOAT32_ATOL if dtype == np.float32 else (1e-7 if activation == "gelu" else 1e-12)
        if isinstance(model, MLPClassifier):
            label, proba = outputs
            expected = model.predict_proba(X)
            assert proba.dtype == dtype and proba.shape == expected.shape
            assert_allclose(proba, expected, rtol=0, atol=atol)
            sure = np.abs(expected - 0.5).min(axis=1) > 1e-4 if head == "multilabel" else (
                np.ptp(np.sort(expected, axis=1)[:, -2:], axis=1) > 1e-4
            )
            assert_array_equal(label[sure], model.predict(X)[sure])
        else:
            (prediction,) = outputs
            expected = model.predict(X).reshape(len(X), -1)
            assert prediction.dtype == dtype and prediction.shape == expected.shape
            assert_allclose(prediction, expected, rtol=atol, atol=atol)


@pytest.mark.parametrize("batch_norm, batch_norm_input", BATCH_NORM)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_batch_norm_and_head(activation, batch_norm, batch_norm_input):
    for head in Y:
        _check(_model(head, activation, batch_norm, batch_norm_input), head, activation)


def test_float32_model():
    model = _model("multilabel", "elu", "after", True, dtype=np.float32)
    assert model.coefs_[0].dtype == np.float32
    label, proba = _run(skdeep_onnx.to_onnx(model, X[:1].astype(np.float32), options={"zipmap": False}), X.astype(np.float32))
    assert_allclose(proba, model.predict_proba(X.astype(np.float32)), rtol=0, atol=FLOAT32_ATOL)
    assert label.shape == (len(X), 3) and label.dtype == np.int64


def test_zipmap_string_labels_and_class_indices():
    y = np.array(["cat", "dog", "emu"])[Y["softmax"]]
    model = _fit(MLPClassifier((4,), max_iter=3, random_state=0), X, y)
    label, proba = _run(skdeep_onnx.to_onnx(model, X.astype(np.float32)), X.astype(np.float32))
    assert_array_equal(label, model.predict(X))
    assert list(proba[0]) == ["cat", "dog", "emu"]
    assert_allclose([[row[c] for c in model.classes_] for row in proba], model.predict_proba(X), atol=FLOAT32_ATOL)
    indices, _ = _run(skdeep_onnx.to_onnx(model, np.float32, options={"zipmap": False, "nocl": True}), X.astype(np.float32))
    assert_array_equal(model.classes_[indices], model.predict(X))


def test_pipeline_through_skl2onnx():
    pipeline = make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=(4,), activation="swish", max_iter=3, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipeline.fit(X, Y["multi_output"])
    (prediction,) = _run(skl2onnx.to_onnx(pipeline, X[:1]), X)
    assert_allclose(prediction, pipeline.predict(X), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("activation", ["rrelu", "selu", "gelu"])
def test_autoencoder_transform(activation):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ae = StackedAutoencoder((3, 2), activation=activation, max_iter=3, random_state=0).fit(X)
    for dtype, atol in ((np.float64, 1e-7 if activation == "gelu" else 1e-12), (np.float32, FLOAT32_ATOL)):
        (codes,) = _run(skdeep_onnx.to_onnx(ae, dtype), X.astype(dtype))
        assert codes.shape == (len(X), 2)
        assert_allclose(codes, ae.transform(X), rtol=atol, atol=atol)


def test_what_cannot_be_exported_raises_clearly(monkeypatch):
    model = _fit(MLPClassifier((3,), max_iter=2, random_state=0), X, Y["binary"])
    with pytest.raises(RuntimeError, match="Int32TensorType"):
        skdeep_onnx.to_onnx(model, X.astype(np.int32))
    with pytest.raises(ValueError, match="float32 or float64"):
        skdeep_onnx.to_onnx(model, np.int64)
    with pytest.raises(Exception, match="NotFitted|not fitted"):
        skdeep_onnx.to_onnx(MLPRegressor(), np.float32)
    monkeypatch.setattr(skdeep_onnx, "skl2onnx", None)
    with pytest.raises(ImportError, match=r"\.\[onnx\]"):
        skdeep_onnx.to_onnx(model, np.float32)
