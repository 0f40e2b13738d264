"""ONNX export: skl2onnx converters for skdeep's estimators.

Importing this module registers, with skl2onnx, a converter and a shape
calculator for :class:`skdeep.MLPClassifier`, :class:`skdeep.MLPRegressor`
and :meth:`skdeep.StackedAutoencoder.transform`, so ``skl2onnx.to_onnx``
converts them, alone or inside a scikit-learn ``Pipeline``::

    import skdeep.onnx
    onx = skdeep.onnx.to_onnx(model, X[:1].astype("float32"))

The graph computes what ``predict``, ``predict_proba`` and ``transform``
compute at inference: every hidden activation (ELU, SELU, leaky ReLU and
PReLU as ONNX's operators, RReLU as a leaky ReLU with the mean of its slope
range, GELU as ``z * Phi(z)`` with ``erf``, swish as ``z * sigmoid(z)``),
dropout and alpha dropout as the identity, and batch norm with its moving
statistics, folded into the neighbouring dense layer. The graph computes in
the input tensor's type (float32 or float64), as skl2onnx's converters do.
The classifier has scikit-learn's two outputs: the label and the
probabilities (a list of dicts with skl2onnx's default ``zipmap=True``; a
matrix with ``options={"zipmap": False}``). See ``docs/deploy.md``.

Needs the ``onnx`` extra (``pip install ".[onnx]"``: onnx, skl2onnx,
onnxruntime to run the graphs).
"""

import numpy as np
from sklearn.utils.validation import check_is_fitted

from skdeep._mlp import MLPClassifier, MLPRegressor
from skdeep.autoencoder import StackedAutoencoder
from skdeep.kernels import codes

_IMPORT_ERROR = None
try:
    import skl2onnx
    from skl2onnx import update_registered_converter
    from skl2onnx.common.data_types import (
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )
    from skl2onnx.common.utils import check_input_and_output_numbers, check_input_and_output_types
    from skl2onnx.common.utils_classifier import get_label_classes
    from skl2onnx.proto import onnx_proto
except ImportError as error:  # the functions below say what to install
    skl2onnx = None
    _IMPORT_ERROR = error


def to_onnx(model, X, *, options=None, target_opset=None, **kwargs):
    """Convert a fitted skdeep model (or a pipeline holding one) to ONNX.

    A thin wrapper of ``skl2onnx.to_onnx`` that also accepts a dtype for the
    input: ``to_onnx(model, np.float32)`` declares an input ``X`` of shape
    ``(None, model.n_features_in_)``.

    Parameters
    ----------
    model : estimator
        A fitted :class:`~skdeep.MLPClassifier`, :class:`~skdeep.MLPRegressor`,
        :class:`~skdeep.StackedAutoencoder`, or a scikit-learn pipeline of
        convertible steps.
    X : array-like or dtype
        A sample of the input (its dtype, float32 or float64, is the graph's
        type), or ``np.float32`` / ``np.float64``.
    options : dict or None, default=None
        skl2onnx's converter options, e.g. ``{"zipmap": False}`` for the
        classifier's probabilities as a matrix, ``{"nocl": True}`` for class
        indices instead of labels.
    target_opset : int or None, default=None
        ONNX opset; None is skl2onnx's default.
    **kwargs
        Passed to ``skl2onnx.to_onnx``.

    Returns
    -------
    onnx.ModelProto
    """
    _require()
    if isinstance(X, (type, str, np.dtype)):
        dtype = np.dtype(X)
        tensor = {np.dtype(np.float32): FloatTensorType, np.dtype(np.float64): DoubleTensorType}.get(dtype)
        if tensor is None:
            raise ValueError(f"The input dtype must be float32 or float64, got {dtype}.")
        check_is_fitted(model)
        initial_types = [("X", tensor([None, model.n_features_in_]))]
        return skl2onnx.to_onnx(
            model, initial_types=initial_types, options=options, target_opset=target_opset, **kwargs
        )
    return skl2onnx.to_onnx(model, X, options=options, target_opset=target_opset, **kwargs)


def _require():
    if skl2onnx is None:
        raise ImportError(
            'ONNX export needs skl2onnx and onnx: pip install ".[onnx]" (from a checkout).'
        ) from _IMPORT_ERROR


# -- the network at inference, in NumPy ---------------------------------------


def _folded_layers(model):
    """``[(W, b), ...]`` in float64: the dense layers with batch norm folded in.

    At inference batch norm is the affine map ``x s + t`` with
    ``s = gamma / sqrt(moving_var + eps)``, ``t = beta - moving_mean s``
    (Ioffe & Szegedy, 2015, Algorithm 2); dropout is the identity. An affine
    map on a layer's input (batch norm of the inputs, or after the previous
    layer's activation) folds into the layer: ``(x s + t) W + b = x (s W) +
    (t W + b)``; one before the activation replaces the bias:
    ``BN(a W) = a (W s) + t``.
    """
    architecture = model._architecture
    eps = architecture["batch_norm_epsilon"]
    placement = architecture["batch_norm"]
    affines = []
    for gamma, beta, mean, var in zip(
        model.batch_norm_gamma_, model.batch_norm_beta_,
        model.batch_norm_moving_mean_, model.batch_norm_moving_var_,
    ):
        scale = np.asarray(gamma, dtype=np.float64) / np.sqrt(np.asarray(var, dtype=np.float64) + eps)
        affines.append((scale, np.asarray(beta, dtype=np.float64) - np.asarray(mean, dtype=np.float64) * scale))
    affines = iter(affines)
    pending = next(affines) if architecture["batch_norm_input"] else None
    layers = []
    last = len(model.coefs_) - 1
    for index, (W, b) in enumerate(zip(model.coefs_, model.intercepts_)):
        W = np.asarray(W, dtype=np.float64)
        hidden = index < last
        b = np.zeros(W.shape[1]) if hidden and placement == "before" else np.asarray(b, dtype=np.float64)
        if pending is not None:
            scale, shift = pending
            W, b = scale[:, None] * W, b + shift @ W
            pending = None
        if hidden and placement == "before":
            scale, shift = next(affines)
            W, b = W * scale, b * scale + shift
        elif hidden and placement == "after":
            pending = next(affines)
        layers.append((W, b))
    return layers


# -- graph building -------------------------------------------------------------


class _Graph:
    """Adds nodes and constants of one dtype to skl2onnx's container."""

    def __init__(self, scope, container, proto):
        self.scope, self.container = scope, container
        if proto == onnx_proto.TensorProto.DOUBLE:
            self.proto, self.dtype = proto, np.float64
        else:
            self.proto, self.dtype = onnx_proto.TensorProto.FLOAT, np.float32

    def constant(self, value, name="constant"):
        value = np.asarray(value, dtype=self.dtype)
        return self.add_constant(value, self.proto, name)

    def add_constant(self, value, proto, name):
        variable = self.scope.get_unique_variable_name(name)
        self.container.add_initializer(variable, proto, list(value.shape), value.ravel().tolist())
        return variable

    def node(self, op, inputs, output=None, domain="", **attributes):
        output = output or self.scope.get_unique_variable_name(op.lower())
        self.container.add_node(
            op, inputs, output, op_domain=domain, name=self.scope.get_unique_operator_name(op),
            **attributes,
        )
        return output

    def dense(self, x, W, b):
        return self.node("Add", [self.node("MatMul", [x, self.constant(W, "coefficient")]), self.constant(b, "intercept")])

    def activate(self, z, options, prelu=None):
        """The hidden activation of :func:`skdeep.kernels.cpu._activate`.

        ONNX stores the float attributes of LeakyRelu, Elu and Selu in float32,
        and ONNX Runtime implements PRelu and Erf in float32 only, so a float64
        graph builds those activations from elementary operators and float64
        constants (erf stays in float32).
        """
        code, alpha, lower, upper = options
        double = self.dtype == np.float64
        if code == codes.IDENTITY:
            return z
        if code in (codes.RELU, codes.LOGISTIC, codes.TANH):
            return self.node({codes.RELU: "Relu", codes.LOGISTIC: "Sigmoid", codes.TANH: "Tanh"}[code], [z])
        if code in (codes.LEAKY_RELU, codes.RRELU, codes.PRELU):
            if code == codes.PRELU:
                slope = np.asarray(prelu)
            else:
                slope = np.array([alpha if code == codes.LEAKY_RELU else 0.5 * (lower + upper)])  # RReLU: mean slope
            if double:  # ONNX Runtime has no float64 PRelu: max(z, 0) + slope * min(z, 0)
                negative = self.node("Mul", [self.node("Min", [z, self.constant(0.0, "zero")]), self.constant(slope, "slope")])
                return self.node("Add", [self.node("Relu", [z]), negative])
            if code == codes.PRELU:
                return self.node("PRelu", [z, self.constant(slope, "prelu_alpha")])
            return self.node("LeakyRelu", [z], alpha=float(slope[0]))
        if code in (codes.ELU, codes.SELU):
            scale, alpha = (codes.SELU_LAMBDA, codes.SELU_ALPHA) if code == codes.SELU else (1.0, alpha)
            if not double:
                if code == codes.SELU:
                    return self.node("Selu", [z], alpha=float(alpha), gamma=float(scale))
                return self.node("Elu", [z], alpha=float(alpha))
            # scale * (max(z, 0) + alpha * (exp(min(z, 0)) - 1)): the second term is 0 for z > 0
            negative = self.node("Min", [z, self.constant(0.0, "zero")])
            saturation = self.node("Sub", [self.node("Exp", [negative]), self.constant(1.0, "one")])
            value = self.node("Add", [self.node("Relu", [z]), self.node("Mul", [saturation, self.constant(alpha, "alpha")])])
            return self.node("Mul", [value, self.constant(scale, "scale")])
        if code == codes.GELU:  # 0.5 z (1 + erf(z / sqrt(2))), Hendrycks & Gimpel (2016)
            scaled = self.node("Mul", [z, self.constant(1.0 / np.sqrt(2.0), "inv_sqrt2")])
            if double:  # ONNX Runtime has no float64 Erf: compute it in float32
                scaled = self.node("Cast", [scaled], to=onnx_proto.TensorProto.FLOAT)
                erf = self.node("Cast", [self.node("Erf", [scaled])], to=self.proto)
            else:
                erf = self.node("Erf", [scaled])
            half_z = self.node("Mul", [z, self.constant(0.5, "half")])
            return self.node("Mul", [half_z, self.node("Add", [erf, self.constant(1.0, "one")])])
        if code == codes.SWISH:  # z sigmoid(z), Ramachandran et al. (2017)
            return self.node("Mul", [z, self.node("Sigmoid", [z])])
        raise ValueError(f"Cannot export the activation with kernel code {code} to ONNX.")

    def network(self, x, layers, options, prelu, head):
        """Hidden layers, then the output layer and its ``head``."""
        for index, (W, b) in enumerate(layers[:-1]):
            x = self.activate(self.dense(x, W, b), options, prelu[index] if prelu else None)
        z = self.dense(x, *layers[-1])
        if head == "hidden":
            return self.activate(z, options)
        heads = {"identity": None, "exp": "Exp", "logistic": "Sigmoid", "softmax": "Softmax"}
        if head not in heads:
            raise ValueError(f"Cannot export the output activation {head!r} to ONNX.")
        if heads[head] is None:
            return z
        return self.node(heads[head], [z], **({"axis": 1} if head == "softmax" else {}))


def _mlp_graph(scope, operator, container):
    model = operator.raw_operator
    if "_architecture" not in model.__dict__:
        raise ValueError(
            f"{type(model).__name__} has fitted arrays but no network options; only a model "
            "trained by fit or partial_fit can be exported."
        )
    graph = _Graph(scope, container, _proto(operator))
    output = graph.network(
        operator.inputs[0].full_name, _folded_layers(model), model._architecture["activation"],
        model.prelu_alpha_, model.out_activation_,
    )
    return graph, output


def _proto(operator):
    if isinstance(operator.inputs[0].type, DoubleTensorType):
        return onnx_proto.TensorProto.DOUBLE
    return onnx_proto.TensorProto.FLOAT


# -- converters and shape calculators -----------------------------------------------


def _classes(scope, model):
    """Class labels as int64 (numbers: a classifier's float labels are integral) or UTF-8 bytes."""
    classes = np.asarray(get_label_classes(scope, model))
    if classes.dtype.kind in "iubf":
        return classes.astype(np.int64), onnx_proto.TensorProto.INT64
    return np.array([str(c).encode("utf-8") for c in classes]), onnx_proto.TensorProto.STRING


def _multilabel(model):
    return model._label_binarizer.y_type_.startswith("multilabel")


def _convert_classifier(scope, operator, container):
    """Label (the first output) and probabilities (the second), as ``predict`` and ``predict_proba``.

    Binary: ``[1 - p, p]`` and the label of the larger (``p > 0.5``, as
    ``LabelBinarizer.inverse_transform``); multiclass: softmax and its
    argmax (the first of ties); multilabel: each output above 0.5.
    """
    model = operator.raw_operator
    graph, output = _mlp_graph(scope, operator, container)
    label, proba = operator.outputs[0].full_name, operator.outputs[1].full_name
    if model.n_outputs_ == 1:
        complement = graph.node("Sub", [graph.constant(1.0, "one"), output])
        graph.node("Concat", [complement, output], proba, axis=1)
    else:
        graph.node("Identity", [output], proba)
    if _multilabel(model):
        above = graph.node("Greater", [output, graph.constant(0.5, "threshold")])
        graph.node("Cast", [above], label, to=onnx_proto.TensorProto.INT64)
        return
    index = graph.node("ArgMax", [proba], axis=1, keepdims=0)
    classes, proto = _classes(scope, model)
    graph.node("Gather", [graph.add_constant(classes, proto, "classes"), index], label, axis=0)


def _convert_regressor(scope, operator, container):
    """Predictions of shape ``(n_samples, n_outputs)``."""
    graph, output = _mlp_graph(scope, operator, container)
    graph.node("Identity", [output], operator.outputs[0].full_name)


def _convert_autoencoder(scope, operator, container):
    """Codes of the top layer, as ``transform``."""
    model = operator.raw_operator
    graph = _Graph(scope, container, _proto(operator))
    layers = [(np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64)) for W, b in zip(model.coefs_, model.intercepts_)]
    options = model._activation
    x = operator.inputs[0].full_name
    for W, b in layers:
        x = graph.activate(graph.dense(x, W, b), options)
    graph.node("Identity", [x], operator.outputs[0].full_name)


def _check_input(operator, n_outputs):
    check_input_and_output_numbers(operator, input_count_range=1, output_count_range=n_outputs)
    check_input_and_output_types(operator, good_input_types=[FloatTensorType, DoubleTensorType])
    return operator.inputs[0].get_first_dimension(), type(operator.inputs[0].type)


def _classifier_shape(operator):
    n, tensor = _check_input(operator, 2)
    model = operator.raw_operator
    check_is_fitted(model)
    if len(model.classes_) < 2 and not _multilabel(model):
        raise ValueError("Cannot export a classifier fitted on a single class.")
    if _multilabel(model):
        operator.outputs[0].type = Int64TensorType(shape=[n, model.n_outputs_])
    else:
        _, proto = _classes(operator.scope_inst, model)
        label = StringTensorType if proto == onnx_proto.TensorProto.STRING else Int64TensorType
        operator.outputs[0].type = label(shape=[n])
    operator.outputs[1].type = tensor(shape=[n, max(model.n_outputs_, 2)])


def _regressor_shape(operator):
    n, tensor = _check_input(operator, 1)
    check_is_fitted(operator.raw_operator)
    operator.outputs[0].type = tensor(shape=[n, operator.raw_operator.n_outputs_])


def _autoencoder_shape(operator):
    n, tensor = _check_input(operator, 1)
    check_is_fitted(operator.raw_operator)
    operator.outputs[0].type = tensor(shape=[n, operator.raw_operator.coefs_[-1].shape[1]])


def _register():
    """Register the converters with skl2onnx (done on import)."""
    update_registered_converter(
        MLPClassifier, "SkdeepMLPClassifier", _classifier_shape, _convert_classifier,
        options={"zipmap": [True, False, "columns"], "nocl": [False, True], "output_class_labels": [False, True]},
    )
    update_registered_converter(MLPRegressor, "SkdeepMLPRegressor", _regressor_shape, _convert_regressor)
    update_registered_converter(
        StackedAutoencoder, "SkdeepStackedAutoencoder", _autoencoder_shape, _convert_autoencoder
    )


if skl2onnx is not None:
    _register()

__all__ = ["to_onnx"]
