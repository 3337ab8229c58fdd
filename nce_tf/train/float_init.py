"""Float initialisation: a quantized network started from a trained float network's weights.

Low-bit QAT papers seldom train from scratch: PACT (Choi et al., 2018) and LSQ (Esser et al.,
2020) fine-tune a trained full-precision network with quantization switched on, as do most users
quantizing their own model.  This module gives a quantized network (a zoo model, a derived
architecture, any functional Keras model) the weights of a float one, and its PACT clips from
activation statistics.

**Where the float network comes from** (:func:`finished_model`): a ``.keras`` file, or the work
directory of a finished nce-tf run (its ``model.keras`` once ``metrics.json`` exists; for an
``nce-tf nce`` run, its ``train/``).  Files are loaded in Keras's safe mode: no code runs.

**Which weights go where** (:func:`load_float_weights`).  Layers are matched by name (the zoo
names its layers, a derived network keeps the user's names).  Conv and dense kernels, biases,
depthwise kernels and every BN vector (gamma, beta, moving mean and variance) are copied; a PACT
clip is copied when both layers have one.  With the same widths everything is copied as it is,
so the quantized network computes what the float one computes once its quantizers are off.
Where the widths differ, the channels follow one rule, ``rule="l1"``:

What a layer holds and how its channels are laid out is its op's word (``Op.float_kind``,
``Op.keras_layout``: :func:`nce_tf.search.ops.keras_op`); a layer no op reads passes its input's
channels through if it is weightless, else it cannot be matched.

1. Output channels that must stay aligned are grouped: the outputs of the convs feeding one
   ``Add`` (through BN, activations, pooling) share their channel index, so they are chosen
   together.  Every other conv or dense layer is a group of its own.
2. A group narrower than the checkpoint keeps the checkpoint's filters with the largest L1
   norms, **in their original order**.  A filter's score is the sum over the group's layers of
   its L1 norm divided by that layer's mean filter L1 norm (each layer votes with equal weight);
   ties go to the lower index.  (``rule="first"`` keeps the first filters instead.)
3. A group wider than the checkpoint keeps all its filters, in order, followed by fresh ones
   (the network's own initialisation, as built), which start without effect yet train.  In a
   quantized network (PACT activations) every BN on those channels starts at gamma = beta = 0, so
   they output 0 and the consumers' fresh columns, random, read zeros yet pass the gradient that
   trains them (PACT's fake-quant passes the gradient at 0).  Behind a ReLU, whose gradient at 0 is
   0 in TensorFlow, that start would never train, so in a network without PACT sites the fresh
   channels keep their BN as built and every consumer's columns reading them start at 0 instead
   (the same rule as :mod:`nce_tf.adapter.from_trained`).  A 1x1 projection the checkpoint lacks (a block
   whose widths now differ where the checkpoint's shortcut was the identity) starts as that
   identity: its kernel maps each input channel to the output channel holding the same checkpoint
   channel, its BN is the identity in inference (gamma 1, beta 0, mean 0, variance ``1 - eps``).
   So a network wider than the checkpoint first computes, in inference and with its quantizers
   off, what the checkpoint computes.  (Random fresh channels at gamma 1 and a random projection
   took a trained ResNet-8 from 65% to 15-29% test accuracy before any training; the super-net's
   loading does the same, :mod:`nce_tf.adapter.from_trained`.)
4. BN vectors, biases and depthwise kernels follow their channels; a consumer's kernel takes the
   input columns of the channels kept (after a ``Flatten``, at every position), and its columns
   of fresh channels stay fresh.
5. Layers the checkpoint does not have keep their initialisation.  Only 1x1 convs (and their BN)
   may be missing on either side (the projections a residual block gets where widths differ);
   any other difference, other classes or another input means the checkpoint is of another model:
   a one-line :class:`~nce_tf.errors.UsageError`.

Keeping the largest-norm filters is the criterion of filter pruning (Li et al., 2017, "Pruning
filters for efficient ConvNets"): a searched network narrower than the original starts from what
the original weighted most.

**PACT clips from statistics** (:func:`calibrate_pact`).  A fixed clip (``--pact_alpha_init``)
suits a network trained from scratch; a trained network's activations have their own scales,
layer by layer.  Each PACT site, in graph order (so upstream clips are set before a site's inputs
are read), gets the clip ``a`` that minimises the mean squared error between PACT's output and
the float ReLU over a few training batches, searched over the 5th, 6th, ..., 99th percentiles
of the positive activations and 32 steps from there to the largest one.  At 2 bits PACT has the
levels ``{0, a/3, 2a/3, a}``: a high percentile or the maximum (or ``mean + k std``) leaves most
activations on the lowest level, a low clip saturates many; the MSE balances clipping against
rounding for whatever shape the distribution has (the ACIQ criterion of Banner et al., 2019;
SAWB's weight clips are fitted to the same error).  The activations are read in inference mode
(BN's moving statistics), which for a float-initialised network are its trained statistics.

Example:

>>> import keras, numpy as np, nce_tf
>>> from nce_tf.train.float_init import load_float_weights, mse_clip
>>> float_net = nce_tf.models.build_model("resnet8")
>>> w2a2 = nce_tf.models.build_model("resnet8", policy=nce_tf.models.QuantPolicy(w_bits=2, a_bits=2))
>>> report = load_float_weights(w2a2, float_net)
>>> len(report["fresh"]), len(report["partial"])
(0, 0)
>>> round(mse_clip(np.abs(np.random.default_rng(0).normal(size=100000)), bits=2), 1)
2.0
"""

import collections
import dataclasses
import json
import os
import zipfile

import numpy as np

from nce_tf.errors import UsageError
from nce_tf.calibration import mse_clip  # noqa: F401  (also this module's public name)

MODEL_FILE, METRICS_FILE = "model.keras", "metrics.json"
RULES = ("l1", "first")
_INPUT = "<input>"  # the group of the image channels: never selected


def finished_model(value, field):
    """The ``.keras`` file that ``value`` names, and the metrics of the run that wrote it.

    Args:
        value: a ``.keras`` file, or the work directory of a finished nce-tf run (``DIR/model.keras``
            with ``DIR/metrics.json``; an ``nce`` run's ``DIR/train/`` is searched too).
        field: the setting's name, for the error message (``"init_from"``, ``"teacher"``).

    Returns:
        ``(path, metrics)``: ``metrics`` is the run's ``metrics.json`` (``None`` for a file
        without one beside it).

    Raises:
        UsageError: nothing loadable there (checked without TensorFlow).
    """
    path = os.path.expanduser(value)
    allowed = "a .keras file, or the work directory of a finished nce-tf run (it holds model.keras and metrics.json)"
    if os.path.isdir(path):
        for run in (path, os.path.join(path, "train")):
            model, metrics = os.path.join(run, MODEL_FILE), os.path.join(run, METRICS_FILE)
            if os.path.isfile(model) and os.path.isfile(metrics):
                return model, _read_json(metrics)
        raise UsageError(f"The directory holds no finished run (no {MODEL_FILE} with a {METRICS_FILE}). "
                         f"Received: {field}={value!r}. Allowed: {allowed}.")
    if not os.path.isfile(path):
        raise UsageError(f"No such file or directory. Received: {field}={value!r}. Allowed: {allowed}.")
    if not path.endswith(".keras") or not zipfile.is_zipfile(path):
        raise UsageError(f"Not a .keras archive (a zip written by model.save). Received: {field}={value!r}. "
                         f"Allowed: {allowed}.")
    beside = os.path.join(os.path.dirname(path), METRICS_FILE)
    return path, _read_json(beside) if os.path.isfile(beside) else None


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def describe_source(value, field):
    """What ``metrics.json`` records of a float checkpoint or a teacher: the path as given, the file read,
    its SHA-256, and the test accuracy of the run that wrote it (``None`` if unknown)."""
    # nce_tf.sources sits above this package: reached lazily, to resolve a model name (WORKSPACE.md)
    from nce_tf.sources.user import file_sha256

    path, metrics = finished_model(value, field)
    accuracy = (metrics or {}).get("test_accuracy")
    return {"path": value, "file": os.path.abspath(path), "sha256": file_sha256(path),
            "test_accuracy": float(accuracy) if isinstance(accuracy, (int, float)) else None}


# ------------------------------------------------------------------ the channel graph


@dataclasses.dataclass(frozen=True)
class _Layout:
    """The channels of a tensor: segments ``(group key, width)`` (a concatenation has several), and
    how many positions a ``Flatten`` spread them over (the channel index runs fastest)."""

    segments: tuple
    spatial: int = 1

    @property
    def width(self):
        return sum(w for _, w in self.segments)


class _Graph:
    """A functional model's weighted layers with the channel layouts of their inputs and outputs, and
    the groups of producer outputs tied by ``Add`` layers (a union-find over producer names)."""

    def __init__(self, model, received):
        # Here, not at the top: finished_model and describe_source are used without TensorFlow.
        from nce_tf.adapter.graph import read_graph
        from nce_tf.search.ops import keras_op

        try:
            refs = read_graph(model)
        except UsageError as e:
            raise UsageError(f"Float weights are matched on functional or Sequential models: {e}") from None
        self.parent = {}
        self.layers, self.kinds, self.inputs, layouts = {}, {}, {}, {}
        self.shapes = {ref.name: ref.shape for ref in refs}
        for ref in refs:
            if ref.layer is None:
                layouts[ref.name] = _Layout(((_INPUT, int(ref.shape[-1])),))
                continue
            ins = [layouts[n] for n in ref.inputs]
            op = keras_op(ref.layer)  # what the layer's op says a trained layer of its type holds
            kind = op.float_kind(ref.layer) if op is not None else None
            if kind is None:
                if ref.layer.weights or len(ins) != 1 or ins[0].width != ref.shape[-1]:
                    raise UsageError(f"Float weights cannot be matched through layer {ref.name!r} "
                                     f"({type(ref.layer).__name__}). Received: {received}.")
                kind = "pass"
            layouts[ref.name] = ins[0] if kind == "pass" else op.keras_layout(ref, ins, self)
            self.layers[ref.name], self.kinds[ref.name] = ref.layer, kind
            self.inputs[ref.name] = ins[0] if ins else None
        self.input_width = layouts[refs[0].name].width
        self.output_width = layouts[refs[-1].name].width

    # The channel layouts the ops' ``keras_layout`` build a layer's output from.
    def own(self, ref):
        """A layer's own output channels (a conv or dense layer: one group of its own)."""
        return _Layout(((ref.name, int(ref.shape[-1])),))

    def tie(self, ins):
        """An add: its inputs' channels share one index, so their groups are one."""
        for other in ins[1:]:
            for (a, _), (b, _) in zip(ins[0].segments, other.segments):
                self._union(a, b)
        return ins[0]

    @staticmethod
    def concat(ins):
        return _Layout(tuple(s for lay in ins for s in lay.segments))

    def spread(self, ref, layout):
        """A flatten: each channel at every position of its input."""
        return _Layout(layout.segments, layout.spatial * int(np.prod(self.shapes[ref.inputs[0]][:-1])))

    def _find(self, key):
        while self.parent.get(key, key) != key:
            key = self.parent[key]
        return key

    def _union(self, a, b):
        ra, rb = self._find(a), self._find(b)
        if ra != rb:
            self.parent[rb] = ra

    def weighted(self, kinds=("producer", "depthwise", "bn")):
        return [n for n, k in self.kinds.items() if k in kinds]

    def groups(self):
        """Root key -> the producers whose outputs share the channel index (graph order)."""
        out = collections.defaultdict(list)
        for name in self.weighted(("producer",)):
            out[self._find(name)].append(name)
        return out

    def optional(self, name):
        """A layer a checkpoint may lack: a 1x1 conv (a projection), or the BN / depthwise conv that
        reads one."""
        if self.kinds[name] == "producer":
            return _is_conv(self.layers[name]) and tuple(self.layers[name].kernel.shape[:2]) == (1, 1)
        segments = self.inputs[name].segments
        return len(segments) == 1 and segments[0][0] in self.kinds and self.optional(segments[0][0])


def _is_conv(layer):
    return len(layer.kernel.shape) == 4


def _describe(graph, name):
    layer = graph.layers[name]
    conv = graph.kinds[name] != "bn" and _is_conv(layer)
    size = "x".join(str(int(k)) for k in layer.kernel.shape[:2]) if conv else ""
    return f"{type(layer).__name__} {name!r}" + (f" ({size})" if size else "")


def _check_same_model(target, source, received):
    """A one-line error unless ``source`` is the model ``target`` is (at any widths)."""
    def other(why):
        return UsageError(f"The float checkpoint is of another model: {why}. Received: {received}. "
                          "Allowed: a checkpoint of the same model (any widths).")

    if source.output_width != target.output_width:
        raise UsageError(f"The float checkpoint has {source.output_width} outputs, the network "
                         f"{target.output_width} (other classes). Received: {received}.")
    if source.input_width != target.input_width:
        raise UsageError(f"The float checkpoint reads {source.input_width} input channels, the network "
                         f"{target.input_width}. Received: {received}.")
    for mine, theirs, who, where in ((source, target, "its", "the network"),
                                     (target, source, "the network's", "the checkpoint")):
        for name in mine.weighted():
            if name not in theirs.kinds and not mine.optional(name):
                raise other(f"{who} {_describe(mine, name)} is not in {where}")
    matched = [n for n in target.weighted() if n in source.kinds]
    for name in matched:
        t, s = target.layers[name], source.layers[name]
        if target.kinds[name] != source.kinds[name] or (target.kinds[name] != "bn" and
                                                        len(t.kernel.shape) != len(s.kernel.shape)):
            raise other(f"its {_describe(source, name)} is a {_describe(target, name)} in the network")
        if target.kinds[name] != "bn" and tuple(t.kernel.shape[:-2]) != tuple(s.kernel.shape[:-2]):
            raise other(f"its {_describe(source, name)} has another kernel size than the network's")
    if not any(target.kinds[n] == "producer" for n in matched):
        raise other("no conv or dense layer of the network is in it (layers are matched by name)")


def _filter_l1(layer):
    kernel = np.asarray(layer.kernel.numpy(), np.float64)
    return np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0)


def _selections(target, source, rule):
    """Group root -> for each of the group's target channels, the checkpoint channel it takes (-1: fresh)."""
    out = {}
    for root, names in target.groups().items():
        width = target.layers[names[0]].kernel.shape[-1]
        matched = [source.layers[n] for n in names if n in source.kinds]
        if root == target._find(_INPUT):  # tied to the image's channels: nothing to choose
            out[root] = np.arange(width)
            continue
        widths = [int(layer.kernel.shape[-1]) for layer in matched]
        have = max(widths, default=0)
        if rule == "first" or have <= width:
            keep = np.arange(min(width, have))
        else:
            score = np.zeros(have)
            for layer in matched:
                l1 = _filter_l1(layer)
                score[: l1.size] += l1 / max(float(l1.mean()), 1e-30)
            keep = np.sort(np.argsort(-score, kind="stable")[:width])
        out[root] = np.concatenate([keep, -np.ones(width - keep.size, int)]).astype(int)
    return out


def _columns(target, source, name, chosen, received):
    """Target input index -> checkpoint input index (-1: fresh) of layer ``name``."""
    t_in, s_in = target.inputs[name], source.inputs[name]
    if len(t_in.segments) != len(s_in.segments) or t_in.spatial != s_in.spatial:
        raise UsageError(f"The float checkpoint is of another model: the input of {_describe(source, name)} "
                         f"is laid out otherwise. Received: {received}.")
    per_channel, offset = [], 0
    for (key, width), (_, have) in zip(t_in.segments, s_in.segments):
        sel = chosen(key, width)
        per_channel.append(np.where((sel >= 0) & (sel < have), sel + offset, -1))
        offset += have
    per_channel = np.concatenate(per_channel)
    return np.concatenate([np.where(per_channel >= 0, per_channel + p * offset, -1) for p in range(t_in.spatial)])


def _assign(variable, value, maps):
    """``variable[target indices] = value[checkpoint indices]`` along the mapped axes (others must agree);
    returns whether every entry came from the checkpoint."""
    current = np.array(variable.numpy())
    if current.ndim != value.ndim or any(current.shape[a] != value.shape[a] for a in range(current.ndim)
                                         if a not in maps):
        raise ValueError(f"shapes {current.shape} and {value.shape}")
    axes = sorted(maps)
    t_sel = [np.flatnonzero(maps[a] >= 0) for a in axes]
    s_sel = [maps[a][t] for a, t in zip(axes, t_sel)]
    t_index, s_index = [slice(None)] * current.ndim, [slice(None)] * current.ndim
    for a, gt, gs in zip(axes, np.ix_(*t_sel), np.ix_(*s_sel)):
        t_index[a], s_index[a] = gt, gs
    current[tuple(t_index)] = value[tuple(s_index)]
    variable.assign(current)
    return all(t.size == maps[a].size for a, t in zip(axes, t_sel))


def load_float_weights(model, source, *, rule="l1", received=None):
    """Copies a float network's weights into ``model`` (a quantized one, at the same or other widths).

    See the module doc for the channel rule.  The quantizers are left as they are: the float
    kernels are the variables QAT trains.

    Args:
        model: the built Keras functional (or Sequential) model to initialise.
        source: the float network: a ``keras.Model``, a ``.keras`` file or a finished run's work
            directory (:func:`finished_model`).
        rule: ``"l1"`` (the largest-L1-norm filters of a narrower group, in order) or ``"first"``.
        received: how the source is named in error messages (default: ``source=...``).

    Returns:
        ``{"loaded": [...], "partial": [...], "fresh": [...]}``: the names of the weighted layers
        copied whole, copied with some fresh channels or columns, and left as initialised.

    Raises:
        UsageError: the source is not of this model (see the module doc), or not loadable.
    """
    if rule not in RULES:
        raise UsageError(f"Invalid rule. Received: rule={rule!r}. Allowed: {', '.join(RULES)}.")
    if isinstance(source, str):
        # nce_tf.sources sits above this package: reached lazily, to resolve a model name (WORKSPACE.md)
        from nce_tf.sources.user import load_keras_file

        received = received or f"source={source!r}"
        source = load_keras_file(finished_model(source, "source")[0], received)
    received = received or f"source={getattr(source, 'name', source)!r}"
    target, src = _Graph(model, "the network"), _Graph(source, received)
    _check_same_model(target, src, received)
    selection = _selections(target, src, rule)
    report = {"loaded": [], "partial": [], "fresh": []}

    def chosen(key, width):
        root = target._find(key)
        return selection[root] if root in selection else np.arange(width)  # the image's channels

    for name in target.weighted(("act",)):  # a PACT clip of a quantized checkpoint
        if src.kinds.get(name) == "act":
            target.layers[name].alpha.assign(src.layers[name].alpha.numpy())
    # Rule 3's start by activation: no PACT site means ReLU-like activations (module doc).
    live = not target.weighted(("act",))
    for name in target.weighted():
        if name not in src.kinds:
            report["fresh"].append(name)
            continue
        whole = _copy_layer(target, src, name, chosen, selection, received, live)
        report["loaded" if whole else "partial"].append(name)
    _identity_projections(target, src, chosen, selection)
    return report


def identity_bn(layer):
    """Sets a BatchNormalization to the identity in inference: gamma 1, beta 0, mean 0, variance ``1 - eps``
    (``sqrt(var + eps) = 1``); a layer without gamma or beta (``scale`` / ``center=False``) has them implied."""
    n = int(layer.moving_mean.shape[0])
    values = {"gamma": 1.0, "beta": 0.0, "moving_mean": 0.0, "moving_variance": max(1.0 - float(layer.epsilon), 0.0)}
    for field, value in values.items():
        if getattr(layer, field, None) is not None:
            getattr(layer, field).assign(np.full(n, value, np.float32))


def _identity_projections(target, src, chosen, selection):
    """Each 1x1 projection the checkpoint lacks starts as the identity shortcut it replaces (module doc, rule 3)."""
    identity = set()
    for name in target.weighted(("producer",)):
        if name not in src.kinds and target.optional(name) and target.inputs[name].spatial == 1:
            layer = target.layers[name]
            ins = np.concatenate([chosen(key, width) for key, width in target.inputs[name].segments])
            outs = selection[target._find(name)]
            kernel = (ins[:, None] >= 0) & (ins[:, None] == outs[None, :])
            layer.kernel.assign(kernel.astype(np.float32)[None, None])
            if getattr(layer, "bias", None) is not None:
                layer.bias.assign(np.zeros(layer.bias.shape, np.float32))
            identity.add(name)
    for name in target.weighted(("bn",)):
        segments = target.inputs[name].segments
        if name not in src.kinds and len(segments) == 1 and segments[0][0] in identity:  # the projection's BN
            identity_bn(target.layers[name])


def _copy_layer(target, src, name, chosen, selection, received, live):
    """Copies layer ``name``'s weights from ``src`` into ``target`` on the chosen channels (output
    channels, and a producer's input columns); True if every variable was copied whole.  Fresh channels
    (rule 3 of the module doc): ``live``, a producer's columns reading them start at 0; else their BN
    starts at gamma = beta = 0."""
    layer, s_layer = target.layers[name], src.layers[name]
    if target.kinds[name] == "producer":
        out = selection[target._find(name)]
        out = np.where(out < s_layer.kernel.shape[-1], out, -1)
    else:
        out = _columns(target, src, name, chosen, received)
    cols = _columns(target, src, name, chosen, received) if target.kinds[name] == "producer" else None
    theirs = {v.name: np.asarray(v.numpy()) for v in s_layer.weights}
    whole = True
    for variable in layer.weights:
        if variable.name not in theirs:
            whole = False
            continue
        value = theirs[variable.name]
        if variable.name == "kernel" and cols is not None:
            maps = {value.ndim - 2: cols, value.ndim - 1: out}
        elif variable.name == "kernel":  # depthwise: [k, k, channels, multiplier]
            maps = {2: out}
        else:
            maps = {0: out}
        try:
            whole = _assign(variable, value, maps) and whole
        except ValueError as e:
            raise UsageError(f"The float checkpoint is of another model: {_describe(src, name)}'s "
                             f"{variable.name} does not fit ({e}). Received: {received}.") from None
    if live and cols is not None and (cols < 0).any():  # live fresh channels that no consumer reads yet (rule 3)
        kernel = layer.kernel.numpy()
        kernel[..., cols < 0, :] = 0.0
        layer.kernel.assign(kernel)
    if not live and target.kinds[name] == "bn" and (out < 0).any():  # fresh channels start silent (rule 3)
        for field in ("gamma", "beta"):
            variable = getattr(layer, field, None)
            if variable is not None:
                variable.assign(np.where(out < 0, 0.0, variable.numpy()).astype(np.float32))
    return whole


# ------------------------------------------------------------------ PACT clips


def calibrate_pact(model, batches, *, sample=1 << 14, seed=0, training=False):
    """Sets every PACT clip of ``model`` from activation statistics (:func:`mse_clip`; module doc).

    Sites are set in graph order, each from the activations its input takes once the clips
    upstream are set, in inference mode (``training=False``) or with every BatchNormalization
    normalising by its batch's statistics (``training=True``).

    The second is for a network whose BN moving statistics do not describe its activations yet (a
    pruned network before its BN statistics are re-estimated): in inference mode its sites would be
    calibrated on activations the stale statistics scale arbitrarily (a pruned MobileNetV2's clips
    came out up to 2,600 times below its activations after re-estimation), and setting an upstream clip changes a
    downstream site's input without its moving statistics following.  Batch statistics follow the
    clips set so far, and are what a re-estimation afterwards makes the moving statistics (the
    training-mode forwards also move the moving statistics by BN's momentum: re-estimate them after).

    Args:
        model: a built functional model with ``QuantActivation`` PACT sites.
        batches: images, or ``(images, labels)`` pairs: a few training batches.
        sample: at most this many positive values per site and batch enter the statistic (a
            seeded random subset).
        seed: the subset's seed.
        training: BN by batch statistics (see above) instead of its moving statistics.

    Returns:
        ``{site name: clip}`` of the sites set (a site that saw no positive value keeps its clip).
    """
    # Keras only when clips are computed (this helper is TF-free otherwise)
    import keras

    images = [b[0] if isinstance(b, (tuple, list)) else b for b in batches]
    rng = np.random.default_rng(seed)
    clips = {}
    for layer in model.layers:
        if getattr(layer, "alpha", None) is None:
            continue
        tap = keras.Model(model.input, layer.input)
        values = []
        for x in images:
            v = np.asarray(tap(x, training=training)).ravel()
            v = v[v > 0]
            values.append(v[rng.integers(0, v.size, sample)] if v.size > sample else v)
        clip = mse_clip(np.concatenate(values) if values else [], layer.quantizer.bits)
        if clip is not None:
            layer.alpha.assign(clip)
            clips[layer.name] = clip
    return clips
