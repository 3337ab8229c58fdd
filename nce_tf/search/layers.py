"""Searchable layers: a conv with an oversized shared kernel and one BN per candidate, and a dense
layer whose input columns follow its producer.

**SearchConv2D** (TAS's ``ConvBNReLU.search_forward`` with NCE's 2X room).  The layer owns one
kernel ``W[k, k, C_in_max, C_out_max]`` (``C_out_max`` = 2X the original width, the expansion
cap) and, per candidate ``j``, BN parameters ``gamma_j, beta_j`` and running statistics.  A
forward takes the sampled pair ``(a, b)``, their widths ``C_a, C_b`` and mixing weights
``h_a + h_b = 1``; with ``C* = max(C_a, C_b)`` and ``c_in`` the channels the producer emits::

    y   = conv(x, Q(W[:, :, :c_in, :C*]))                       one conv at the live width
    out = sum_j h_j * CWI_{C_j -> C*}(BN_j(y[..., :C_j]))       j in {a, b}

Candidate ``j`` uses the first ``C_j`` filters (prefix sharing), so both candidates are slices
of one conv output.  ``Q`` quantizes the live slice once (SAWB's statistics come from the
weights in use).  Because BN is per channel and affine, and CWI is linear, the whole merge is
one ``[C*, C*]`` matrix and a bias applied to a normalised ``y``::

    training:  y_hat = (y - mean_batch) / sqrt(var_batch + eps)     (shared by a and b: on the
               channels they share, their conv outputs and so their batch statistics coincide)
               A = sum_j h_j diag(gamma_j) M_j,   c = sum_j h_j beta_j M_j
    inference: y_hat = y,  A = sum_j h_j diag(s_j) M_j,  c = sum_j h_j (beta_j - mean_j s_j) M_j,
               s_j = gamma_j / sqrt(var_j + eps)  (each candidate's running statistics)
    out = y_hat @ A + c

where ``M_j`` is the CWI matrix padded with zero rows beyond ``C_j`` (:mod:`nce_tf.search.cwi`), or with
``pair_merge="pad"`` the identity on the first ``C_j`` channels (:mod:`nce_tf.search.merge`).
This is exactly TAS's two-BN forward, at the cost of one fused normalisation and one
channel matmul (``tf_facts.md``, "Supernet speed": the straightforward port spends half its time
in two BNs).  The running statistics of candidates ``a`` and ``b`` (their first ``C_j``
channels) are updated from the batch, momentum 0.1 in PyTorch terms.

**Channel alignment.**  The conv computes ``C*`` rounded up to a multiple of
:data:`CHANNEL_ALIGN` (4) output channels: the quantized live slice followed by zero filters.
oneDNN's fused batch norm is 5-8x slower at a channel count that is not a multiple of 4
(ResNet-20 stage 1, 128 x 32 x 32: forward + backward 16-19 ms at 10 or 14 channels, 2-3 ms at
12 or 16), and ``C*`` is such a count for 3 of the 7 values it takes in a K = 8 stage-1 row.
(Rounding up to 8 or 16 measured no faster.)
The extra channels are exact zeros: their normalised values are 0, ``A`` has zero rows for them
(``out`` keeps ``C*`` channels), so no output, gradient, statistic or quantizer scale changes;
only the live slice is quantized and decayed.

**Quantizer scope** (``sawb_scope``).  By default (``"pair"``) ``Q`` sees the live slice
``W[..., :C*]`` once, so a narrower candidate's weights are quantized with the clip of the wider
candidate it was drawn with (SAWB's ``a`` from the statistics of ``C*`` filters): its quantized
weights depend on its partner.  A candidate's derived network quantizes its own kernel
(``QuantConv2D``: one per-tensor SAWB clip over ``W[:, :, :c_in, :C_j]``), as the paper's
candidates do.  With ``sawb_scope="candidate"`` each candidate of the pair quantizes its own
slice with its own clip, and the layer runs one conv over the two quantized slices side by side
(``C_a + C_b`` filters: up to twice the pair's conv work, in one oneDNN call)::

    y   = conv(x, [Q(W[..., :C_a]) | Q(W[..., :C_b])])                   [N, H, W, C_a + C_b]
    out = sum_j h_j * CWI_{C_j -> C*}(BN_j(y_j))                          y_j: candidate j's block

BN normalises every channel of ``y`` with its own batch statistics, so each candidate's BN sees
its own conv output (on their shared channels the two outputs now differ), and the merge is the
stacked matrix ``[h_a diag(gamma_a) M_a[:C_a]; h_b diag(gamma_b) M_b[:C_b]]``.  The input side
is the same in both scopes: the producer's merged output has its own ``C*`` channels, so the
quantized slice spans ``c_in`` = that ``C*`` (the derived network's ``c_in`` is the producer's
derived width).  A float layer (no quantizer) computes the same in both scopes and takes the
pair path.

Weight decay (coupled L2) is on the live slice only (``layer.l2(c_in, c_out)``, the slice a
forward at those widths computes with), so weights no candidate uses are neither decayed nor
moved: they keep their initial values until an expansion re-initialises them anyway.  ``call``
returns the output alone; the super-net adds each layer's ``l2`` to its loss.  (Not through
``add_loss``: under ``MirroredStrategy`` the replicas trace ``call`` in parallel threads on
the same layer objects, whose loss lists they would share.)

**Mixed precision.**  Under ``mixed_float16`` / ``mixed_bfloat16`` the convs, the channel matmul and
the outputs are in the compute dtype (biases are cast to it explicitly: Keras infers an output's
dtype by calling ``call`` outside the autocast scope); as in Keras's own layers every variable stays float32, and
as in Keras's ``BatchNormalization`` the BN parameters and statistics are read in float32
(``autocast=False``) and the batch statistics are computed in float32.  Kernels are read in
float32 too and only their quantized live slice is cast (:mod:`nce_tf.layers.kernel_quantized`:
the quantizer sees the float32 weights, so the grid is the float32 run's), and the CWI merge
``A``, ``c`` is built in float32 from the float32 mixing weights before its cast.
"""

import math

import keras
import tensorflow as tf

from nce_tf import quant
from nce_tf.errors import UsageError
from nce_tf.search.candidates import MAX_CANDIDATES
from nce_tf.search.config import SAWB_SCOPES
from nce_tf.search.merge import check_pair_merge, merge_matrix

CHANNEL_ALIGN = 4


def add_leading(a, b):
    """Residual add of tensors of different widths: the narrower adds into the leading channels."""
    ca, cb = tf.shape(a)[-1], tf.shape(b)[-1]
    c = tf.maximum(ca, cb)
    pad = lambda t, ct: tf.pad(t, [[0, 0], [0, 0], [0, 0], [0, c - ct]])  # noqa: E731
    return pad(a, ca) + pad(b, cb)


def global_moments(y, replica=None):
    """Per-channel ``(mean, variance, count)`` of ``y`` over every axis but the last.

    With a ``replica`` context of several replicas, over the GLOBAL batch: two all-reduces (the
    sum, then the sum of squared deviations about the global mean: more exact in float32 than a
    one-pass sum of squares), both differentiable, as Keras's synchronized BatchNormalization.
    The variance is the biased one.
    """
    axes = list(range(len(y.shape) - 1))
    sync = replica is not None and replica.num_replicas_in_sync > 1
    y = tf.cast(y, tf.float32)  # a 16-bit sum over a batch loses its low bits (Keras's BN upcasts too)
    total, count = tf.reduce_sum(y, axis=axes), tf.cast(tf.reduce_prod(tf.shape(y)[:-1]), y.dtype)
    if sync:
        total, count = replica.all_reduce(tf.distribute.ReduceOp.SUM, [total, count])
    mean = total / count
    squares = tf.reduce_sum(tf.square(y - mean), axis=axes)
    if sync:
        squares = replica.all_reduce(tf.distribute.ReduceOp.SUM, squares)
    return mean, squares / count, count


def _l2(layer, w):
    """Coupled L2 of the live kernel slice ``w``."""
    return 0.5 * layer.weight_decay * tf.reduce_sum(tf.square(w)) if layer.weight_decay else 0.0


def _channel_matmul(y, a, bias):
    """``y @ a + bias`` over the last axis, as one 2-D matmul with its bias add (in ``y``'s dtype)."""
    shape = tf.shape(y)
    a, bias = tf.cast(a, y.dtype), tf.cast(bias, y.dtype)
    out = tf.nn.bias_add(tf.matmul(tf.reshape(y, [-1, shape[-1]]), a), bias)
    return tf.reshape(out, tf.concat([shape[:-1], tf.shape(a)[-1:]], 0))


def merge_candidates(y, widths, mix, pair_merge="cwi"):
    """``sum_j h_j MERGE_{C_j -> C*}(y[..., :C_j])`` for a pair of candidates sharing ``y``."""
    m = merge_matrix(pair_merge, widths, tf.shape(y)[-1])
    merge = tf.einsum("j,jcd->cd", tf.cast(mix, tf.float32), m)
    return tf.einsum("...c,cd->...d", y, tf.cast(merge, y.dtype))


def check_sawb_scope(value):
    """``value`` if it is a quantizer scope (:data:`~nce_tf.search.config.SAWB_SCOPES`), else a one-line error."""
    if value not in SAWB_SCOPES:
        raise UsageError(f"Invalid sawb_scope. Received: sawb_scope={value!r}. Allowed: {', '.join(SAWB_SCOPES)}.")
    return value


def quantize_candidates(layer, live, widths):
    """``[Q(live(C_a)) | Q(live(C_b))]``: each candidate's own slice, quantized on its own, side by side
    on the output axis (``live(c)``: the kernel slice of the first ``c`` outputs), in the layer's compute dtype."""
    both = tf.concat([layer.kernel_quantizer(live(widths[i]), layer._quantizer_weights) for i in range(2)], -1)
    return tf.cast(both, layer.compute_dtype)


def _quantized(layer, w, channel_axes=1):
    """The float32 kernel slice ``w`` fake-quantized (as is for a float layer), in the layer's compute
    dtype; ``channel_axes``: :func:`nce_tf.quant.base.channels_last`'s (2 for a depthwise kernel)."""
    if layer.kernel_quantizer:
        w = quant.base.quantize_channels_last(layer.kernel_quantizer, w, layer._quantizer_weights, channel_axes)
    return tf.cast(w, layer.compute_dtype)


def _float32_weight(layer, name, shape, initializer, trainable=True):
    """A variable read in float32 under any dtype policy (module doc, "Mixed precision")."""
    return layer.add_weight(name=name, shape=shape, initializer=initializer, trainable=trainable, autocast=False)


def stacked_merge(widths, c_star, pair_merge="cwi"):
    """``[M_a[:C_a]; M_b[:C_b]]`` (``[C_a + C_b, C*]``): the merge rows of each candidate's own block of
    a candidate-scope output, with ``tf.repeat(mix, widths)`` the mixing weight of each of its rows."""
    m = merge_matrix(pair_merge, widths, c_star)
    return tf.concat([m[0, :widths[0]], m[1, :widths[1]]], 0)


@keras.saving.register_keras_serializable(package="nce_tf")
class SearchConv2D(keras.layers.Layer):
    """Searchable conv + per-candidate BN + CWI merge (see the module doc).

    Args:
        max_in: most input channels the producer can emit.
        max_out: most output channels (the 2X cap of the layer's row).
        base_width: the layer's original width ``n`` (Kaiming fan-out of the 1X layer).
        kernel_size: square kernel size.
        strides: stride.
        kernel_quantizer: weight quantizer (object, name or config; ``None`` = float).
        weight_decay: coupled L2 coefficient of the live kernel slice.
        momentum: Keras-style BN momentum of the running statistics (0.9 = PyTorch's 0.1).
        epsilon: BN epsilon.
        num_candidates: rows of the per-candidate BN tables (16).
        padding: ``"SAME"`` or ``"VALID"``.
        use_bn: ``False`` for a conv with no BatchNormalization after it (adapted models): the
            candidates then share a bias instead of their BNs, ``out = (y + b) @ sum_j h_j M_j``.
        use_bias: without BN, whether that bias exists (the user's conv's ``use_bias``; a bias the
            derived layer lacks would train in the super-net and be dropped at derivation).
        seed: integer seed of the kernel's initialisation (``None``: Keras's global seed).
        sawb_scope: ``"pair"`` (one quantizer scale over the pair's ``C*`` slice) or ``"candidate"``
            (each candidate's own slice and scale; module doc, "Quantizer scope").
        pair_merge: ``"cwi"`` (TAS's channel-wise interpolation of the narrower candidate) or ``"pad"``
            (its channels in place, zeros beyond): the ``M_j`` of the merge (:mod:`nce_tf.search.merge`).
    """

    def __init__(self, max_in, max_out, base_width, kernel_size=3, strides=1, kernel_quantizer=None,
                 weight_decay=0.0, momentum=0.9, epsilon=1e-5, num_candidates=MAX_CANDIDATES,
                 padding="SAME", use_bn=True, seed=None, sawb_scope="pair", use_bias=True, pair_merge="cwi",
                 **kwargs):
        super().__init__(**kwargs)
        self.padding, self.use_bn = str(padding).upper(), bool(use_bn)
        self.use_bias = bool(use_bias)
        self.seed = seed
        self.sawb_scope = check_sawb_scope(sawb_scope)
        self.pair_merge = check_pair_merge(pair_merge)
        self.max_in, self.max_out, self.base_width = int(max_in), int(max_out), int(base_width)
        self.kernel_size, self.strides = int(kernel_size), int(strides)
        self.kernel_quantizer = quant.get(kernel_quantizer)
        self.weight_decay, self.momentum, self.epsilon = float(weight_decay), float(momentum), float(epsilon)
        self.num_candidates = int(num_candidates)

    @property
    def init_stddev(self):
        return math.sqrt(2.0 / (self.kernel_size**2 * self.base_width))

    def build(self, input_shape=None):
        k, j, c = self.kernel_size, self.num_candidates, self.max_out
        self.kernel = _float32_weight(self, "kernel", (k, k, self.max_in, c),
                                      keras.initializers.RandomNormal(stddev=self.init_stddev, seed=self.seed))
        if self.use_bn:  # the candidates' BN betas are the bias: no bias variable, whatever use_bias
            self.gamma = _float32_weight(self, "gamma", (j, c), "ones")
            self.beta = _float32_weight(self, "beta", (j, c), "zeros")
            self.moving_mean = _float32_weight(self, "moving_mean", (j, c), "zeros", trainable=False)
            self.moving_variance = _float32_weight(self, "moving_variance", (j, c), "ones", trainable=False)
        else:
            self.bias = self.add_weight(name="bias", shape=(c,), initializer="zeros") if self.use_bias else None
        self._quantizer_weights = (
            self.kernel_quantizer.build(self.kernel.shape, self) if self.kernel_quantizer else {})

    def l2(self, c_in, c_out):
        """Coupled L2 of the kernel slice a forward from ``c_in`` channels to ``c_out`` uses."""
        return _l2(self, self.live_kernel(c_in, c_out)[0])

    def live_kernel(self, c_in, c_out):
        """``(W[:, :, :c_in, :c_out]`` in float32, that slice fake-quantized in the compute dtype``)``: what
        a forward at these widths computes with."""
        k = self.kernel_size
        w = tf.slice(self.kernel, [0, 0, 0, 0], tf.stack([k, k, c_in, c_out]))
        return w, _quantized(self, w)

    def call(self, x, widths, index, mix, training=False):
        """Returns the output ``[N, H, W, C*]``.

        Args:
            x: input with ``c_in <= max_in`` channels.
            widths: int32 ``[2]``, ``(C_a, C_b)``.
            index: int32 ``[2]``, the candidate indices ``(a, b)``.
            mix: float32 ``[2]``, the mixing weights ``(h_a, h_b)``.
        """
        mix = tf.cast(mix, tf.float32)  # Keras casts every float argument to the compute dtype
        if self.sawb_scope == "candidate" and self.kernel_quantizer is not None:
            return self._call_per_candidate(x, widths, index, mix, training)
        c_star = tf.reduce_max(widths)
        w, wq = self.live_kernel(tf.shape(x)[-1], c_star)
        if not self.use_bn:
            y = tf.nn.conv2d(x, wq, self.strides, padding=self.padding)
            if self.bias is not None:
                y = y + tf.cast(self.bias[:c_star], y.dtype)
            return merge_candidates(y, widths, mix, self.pair_merge)
        # Zero filters up to a multiple of CHANNEL_ALIGN (module doc, "Channel alignment").
        extra = -c_star % CHANNEL_ALIGN
        y = tf.nn.conv2d(x, tf.pad(wq, [[0, 0], [0, 0], [0, 0], [0, extra]]), self.strides, padding=self.padding)
        gamma = tf.gather(self.gamma, index)[:, :c_star]
        beta = tf.gather(self.beta, index)[:, :c_star]
        if training:
            y, mean, variance = self._normalize(y, c_star + extra)
            self._update_statistics(widths, index, mean[:c_star], variance[:c_star], c_star)
            scale, shift = gamma, beta
        else:
            mean = tf.gather(self.moving_mean, index)[:, :c_star]
            var = tf.gather(self.moving_variance, index)[:, :c_star]
            scale = gamma * tf.math.rsqrt(var + self.epsilon)
            shift = beta - mean * scale
        m = merge_matrix(self.pair_merge, widths, c_star)  # [2, C*, C*], zero rows beyond each C_j
        # Elementwise products and sums, not einsums: at [2, C*, C*] a oneDNN einsum's fixed cost
        # is most of its time.
        a = tf.reduce_sum((mix[:, None] * scale)[:, :, None] * m, axis=0)
        bias = tf.reduce_sum((mix[:, None] * shift)[:, :, None] * m, axis=[0, 1])
        a = tf.pad(a, [[0, extra], [0, 0]])  # [C* + extra, C*]
        return _channel_matmul(y, a, bias)

    def candidate_kernel(self, c_in, widths):
        """``[Q(W[:, :, :c_in, :C_a]) | Q(W[:, :, :c_in, :C_b])]``: what a candidate-scope forward convolves with."""
        k = self.kernel_size
        return quantize_candidates(self, lambda c: tf.slice(self.kernel, [0, 0, 0, 0], tf.stack([k, k, c_in, c])),
                                   widths)

    def _call_per_candidate(self, x, widths, index, mix, training):
        """The forward of ``sawb_scope="candidate"`` (module doc, "Quantizer scope")."""
        c_a, c_b = widths[0], widths[1]
        c_star, both = tf.reduce_max(widths), c_a + c_b
        wq = self.candidate_kernel(tf.shape(x)[-1], widths)
        m = stacked_merge(widths, c_star, self.pair_merge)  # [C_a + C_b, C*]
        h = tf.repeat(mix, widths)  # each row's mixing weight
        if not self.use_bn:
            y = tf.nn.conv2d(x, wq, self.strides, padding=self.padding)
            a = h[:, None] * m
            if self.bias is None:
                return _channel_matmul(y, a, tf.zeros([tf.shape(a)[1]], a.dtype))
            bias = tf.cast(tf.concat([self.bias[:c_a], self.bias[:c_b]], 0), a.dtype)
            return _channel_matmul(y, a, tf.linalg.matvec(a, bias, transpose_a=True))
        extra = -both % CHANNEL_ALIGN  # module doc, "Channel alignment"
        y = tf.nn.conv2d(x, tf.pad(wq, [[0, 0], [0, 0], [0, 0], [0, extra]]), self.strides, padding=self.padding)
        own = lambda var: tf.concat([var[index[0], :c_a], var[index[1], :c_b]], 0)  # noqa: E731
        gamma, beta = own(self.gamma), own(self.beta)
        if training:
            y, mean, variance = self._normalize(y, both + extra)
            self._update_candidate_statistics(widths, index, mean[:both], variance[:both])
            scale, shift = gamma, beta
        else:
            scale = gamma * tf.math.rsqrt(own(self.moving_variance) + self.epsilon)
            shift = beta - own(self.moving_mean) * scale
        a = tf.pad((h * scale)[:, None] * m, [[0, extra], [0, 0]])  # [C_a + C_b + extra, C*]
        return _channel_matmul(y, a, tf.linalg.matvec(m, h * shift, transpose_a=True))

    def _normalize(self, y, channels):
        """``(y_hat, mean, variance)`` of a training forward over ``y``'s ``channels`` (a multiple of
        :data:`CHANNEL_ALIGN`): the fused kernel on one device, the global batch across replicas."""
        replica = tf.distribute.get_replica_context()
        if replica is not None and replica.num_replicas_in_sync > 1:
            return self._normalize_across_replicas(y, replica)
        ones = tf.ones([channels], tf.float32)  # the fused op takes a 16-bit y with float32 scale and statistics
        return tf.compat.v1.nn.fused_batch_norm(y, ones, tf.zeros_like(ones), epsilon=self.epsilon, is_training=True)

    def _normalize_across_replicas(self, y, replica):
        """``fused_batch_norm``'s training outputs computed over the GLOBAL batch of all replicas.

        Under a distribution strategy each replica holds a slice of the batch; normalising with
        per-replica statistics would make an R-replica run differ from one device (and the
        shared-normalisation argument of the module doc needs the statistics of the batch the
        candidates see).  Two all-reduces (sum, then the sum of squared deviations about the
        global mean: more exact in float32 than a one-pass sum of squares), both differentiable,
        as Keras's synchronized BatchNormalization does.  The fused kernel cannot take external
        statistics in training mode (its inference mode treats them as constants in the
        gradient), so this path normalises with plain ops; one device keeps the fused kernel.
        Returns ``(y_hat, mean, variance)`` with the variance Bessel-corrected, as the fused
        op returns it for the running statistics.
        """
        mean, variance, count = global_moments(y, replica)
        y_hat = tf.cast((tf.cast(y, tf.float32) - mean) * tf.math.rsqrt(variance + self.epsilon), y.dtype)
        return y_hat, mean, variance * count / tf.maximum(count - 1.0, 1.0)

    def _update_statistics(self, widths, index, mean, variance, c_star):
        rows = tf.one_hot(index, self.num_candidates)  # [2, J]
        cols = tf.cast(tf.range(self.max_out)[None, :] < widths[:, None], tf.float32)  # [2, C_max]
        # 1 on (a, :C_a) and (b, :C_b); a sub-net's pair (j, j) would count its candidate twice.
        mask = tf.minimum(tf.einsum("jr,jc->rc", rows, cols), 1.0)
        rate = (1.0 - self.momentum) * mask
        pad = [[0, self.max_out - c_star]]
        for var, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
            var.assign(var + rate * (tf.pad(batch, pad)[None, :] - var))

    def _update_candidate_statistics(self, widths, index, mean, variance):
        """Running statistics of a candidate-scope forward: candidate ``a``'s from the first ``C_a``
        entries of ``mean`` / ``variance``, ``b``'s from the rest (a pair ``(j, j)`` updates ``j`` once)."""
        rows = tf.one_hot(index, self.num_candidates)  # [2, J]
        cols = tf.cast(tf.range(self.max_out)[None, :] < widths[:, None], tf.float32)  # [2, C_max]
        count = tf.einsum("jr,jc->rc", rows, cols)
        rate = (1.0 - self.momentum) * tf.minimum(count, 1.0)
        c_a = widths[0]
        for var, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
            own = tf.stack([tf.pad(batch[:c_a], [[0, self.max_out - c_a]]),
                            tf.pad(batch[c_a:], [[0, self.max_out - widths[1]]])])  # [2, C_max]
            value = tf.einsum("jr,jc->rc", rows, own) / tf.maximum(count, 1.0)
            var.assign(var + rate * (value - var))

    def get_config(self):
        return {
            **super().get_config(), "max_in": self.max_in, "max_out": self.max_out,
            "base_width": self.base_width, "kernel_size": self.kernel_size, "strides": self.strides,
            "kernel_quantizer": quant.serialize(self.kernel_quantizer), "weight_decay": self.weight_decay,
            "momentum": self.momentum, "epsilon": self.epsilon, "num_candidates": self.num_candidates,
            "padding": self.padding, "use_bn": self.use_bn, "seed": self.seed, "sawb_scope": self.sawb_scope,
            "use_bias": self.use_bias, "pair_merge": self.pair_merge,
        }


@keras.saving.register_keras_serializable(package="nce_tf")
class SearchDense(keras.layers.Layer):
    """Dense layer whose input columns follow the producer: ``x @ Q(W[:c_in]) + b``.

    The classifier (fixed ``units``) is called as ``layer(x)``; a searchable hidden layer
    (adapted models) holds ``units`` = its 2X cap and is called with the row's pair sample,
    ``layer(x, widths, index, mix)``: one matmul at ``C*`` columns, then the CWI merge.

    Args:
        max_in: most input features.
        units: output units (classes, or the 2X cap of a searchable layer).
        kernel_quantizer: weight quantizer (``None`` = float, the paper's rule).
        weight_decay: coupled L2 coefficient of the live kernel slice.
        base_width: a searchable layer's original width (its initialisation); 0 = classifier.
        use_bias: whether the layer has a bias.
        seed: integer seed of the kernel's initialisation (``None``: Keras's global seed).
        sawb_scope: a searchable layer's quantizer scope, as :class:`SearchConv2D`'s: ``"candidate"``
            runs one matmul over ``[Q(W[:c_in, :C_a]) | Q(W[:c_in, :C_b])]``.
        pair_merge: a searchable layer's pair merge, as :class:`SearchConv2D`'s.
    """

    def __init__(self, max_in, units, kernel_quantizer=None, weight_decay=0.0, base_width=0, use_bias=True,
                 seed=None, sawb_scope="pair", pair_merge="cwi", **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True  # as keras.layers.Dense: a mask passes through
        self.seed = seed
        self.sawb_scope = check_sawb_scope(sawb_scope)
        self.pair_merge = check_pair_merge(pair_merge)
        self.max_in, self.units = int(max_in), int(units)
        self.kernel_quantizer = quant.get(kernel_quantizer)
        self.weight_decay = float(weight_decay)
        self.base_width, self.use_bias = int(base_width), bool(use_bias)

    @property
    def init_stddev(self):
        # TAS's classifier init N(0, 0.01); a hidden layer: Kaiming fan-out of the 1X layer.
        return math.sqrt(2.0 / self.base_width) if self.base_width else 0.01

    def build(self, input_shape=None):
        self.kernel = _float32_weight(self, "kernel", (self.max_in, self.units),
                                      keras.initializers.RandomNormal(stddev=self.init_stddev, seed=self.seed))
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros") if self.use_bias else None
        self._quantizer_weights = (
            self.kernel_quantizer.build(self.kernel.shape, self) if self.kernel_quantizer else {})

    def _live(self, c_in, c_out):
        return tf.slice(self.kernel, [0, 0], tf.stack([c_in, c_out]))

    def l2(self, c_in, c_out=None):
        """Coupled L2 of the kernel rows ``[:c_in]`` and columns ``[:c_out]`` (default: all units)."""
        return _l2(self, self._live(c_in, self.units if c_out is None else c_out))

    def call(self, x, widths=None, index=None, mix=None):
        if widths is not None and self.sawb_scope == "candidate" and self.kernel_quantizer is not None:
            c_in, c_a, c_b = tf.shape(x)[-1], widths[0], widths[1]
            y = tf.matmul(x, quantize_candidates(self, lambda c: self._live(c_in, c), widths))
            if self.use_bias:
                y = y + tf.cast(tf.concat([self.bias[:c_a], self.bias[:c_b]], 0), y.dtype)
            merge = (tf.repeat(tf.cast(mix, tf.float32), widths)[:, None]
                     * stacked_merge(widths, tf.reduce_max(widths), self.pair_merge))
            return tf.matmul(y, tf.cast(merge, y.dtype))
        c_out = self.units if widths is None else tf.reduce_max(widths)
        y = tf.matmul(x, _quantized(self, self._live(tf.shape(x)[-1], c_out)))
        if self.use_bias:
            y = y + tf.cast(self.bias[:c_out], y.dtype)
        return y if widths is None else merge_candidates(y, widths, mix, self.pair_merge)

    def get_config(self):
        return {**super().get_config(), "max_in": self.max_in, "units": self.units,
                "kernel_quantizer": quant.serialize(self.kernel_quantizer),
                "weight_decay": self.weight_decay, "base_width": self.base_width, "use_bias": self.use_bias,
                "seed": self.seed, "sawb_scope": self.sawb_scope, "pair_merge": self.pair_merge}


@keras.saving.register_keras_serializable(package="nce_tf")
class SearchDepthwiseConv2D(keras.layers.Layer):
    """Depthwise conv whose channels follow its input (adapted models): ``dw(x, Q(W[:, :, :c_in]))``.

    A depthwise conv has no width of its own: it filters each channel its producer emits, so
    it holds a kernel for the most channels the producer can emit and slices the live ones.

    Args:
        max_in: most input channels.
        kernel_size, strides, padding: as for ``keras.layers.DepthwiseConv2D`` (multiplier 1).
        kernel_quantizer: weight quantizer (``None`` = float).
        weight_decay: coupled L2 coefficient of the live kernel slice.
        use_bias: whether the layer has a bias.
        seed: integer seed of the kernel's initialisation (``None``: Keras's global seed).
    """

    def __init__(self, max_in, kernel_size=3, strides=1, padding="SAME", kernel_quantizer=None,
                 weight_decay=0.0, use_bias=False, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.max_in, self.kernel_size, self.strides = int(max_in), int(kernel_size), int(strides)
        self.padding = str(padding).upper()
        self.kernel_quantizer = quant.get(kernel_quantizer)
        self.weight_decay, self.use_bias = float(weight_decay), bool(use_bias)

    @property
    def init_stddev(self):
        return math.sqrt(2.0 / self.kernel_size**2)

    def build(self, input_shape=None):
        k = self.kernel_size
        self.kernel = _float32_weight(self, "kernel", (k, k, self.max_in, 1),
                                      keras.initializers.RandomNormal(stddev=self.init_stddev, seed=self.seed))
        self.bias = self.add_weight(name="bias", shape=(self.max_in,), initializer="zeros") if self.use_bias else None
        self._quantizer_weights = (
            self.kernel_quantizer.build(quant.base.channels_last(self.kernel, 2).shape, self)
            if self.kernel_quantizer else {})

    def _live(self, c_in):
        k = self.kernel_size
        return tf.slice(self.kernel, [0, 0, 0, 0], tf.stack([k, k, c_in, 1]))

    def l2(self, c_in):
        """Coupled L2 of the filters of the first ``c_in`` channels."""
        return _l2(self, self._live(c_in))

    def call(self, x):
        c = tf.shape(x)[-1]
        # per channel over its C filters, as QuantDepthwiseConv2D
        y = tf.nn.depthwise_conv2d(x, _quantized(self, self._live(c), channel_axes=2),
                                   [1, self.strides, self.strides, 1], self.padding)
        if self.use_bias:
            y = y + tf.cast(self.bias[:c], y.dtype)
        return y

    def get_config(self):
        return {**super().get_config(), "max_in": self.max_in, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding,
                "kernel_quantizer": quant.serialize(self.kernel_quantizer),
                "weight_decay": self.weight_decay, "use_bias": self.use_bias, "seed": self.seed}


@keras.saving.register_keras_serializable(package="nce_tf")
class SearchBatchNorm(keras.layers.Layer):
    """BatchNormalization over the live leading channels of a width-following tensor.

    Used after a depthwise conv (or a hidden dense layer) of an adapted model: one set of
    per-channel parameters shared by every width, as in slimmable networks (a per-candidate
    table has no meaning where the width is set by the producer's pair, not the layer's own).

    Args:
        max_channels: most channels.
        momentum, epsilon: as for ``keras.layers.BatchNormalization``.
    """

    def __init__(self, max_channels, momentum=0.9, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.max_channels, self.momentum, self.epsilon = int(max_channels), float(momentum), float(epsilon)

    def build(self, input_shape=None):
        c = self.max_channels
        self.gamma = _float32_weight(self, "gamma", (c,), "ones")
        self.beta = _float32_weight(self, "beta", (c,), "zeros")
        self.moving_mean = _float32_weight(self, "moving_mean", (c,), "zeros", trainable=False)
        self.moving_variance = _float32_weight(self, "moving_variance", (c,), "ones", trainable=False)

    def call(self, x, training=False):
        c = tf.shape(x)[-1]
        gamma, beta = self.gamma[:c], self.beta[:c]
        if training:
            mean, var, count = global_moments(x, tf.distribute.get_replica_context())
            pad = [[0, self.max_channels - c]]
            live = tf.pad(tf.ones([c]), pad)
            rate = (1.0 - self.momentum) * live
            unbiased = var * count / tf.maximum(count - 1.0, 1.0)
            self.moving_mean.assign(self.moving_mean + rate * (tf.pad(mean, pad) - self.moving_mean))
            self.moving_variance.assign(self.moving_variance + rate * (tf.pad(unbiased, pad) - self.moving_variance))
        else:
            mean, var = self.moving_mean[:c], self.moving_variance[:c]
        # In float32 and back to the compute dtype, as Keras's BatchNormalization under a mixed policy.
        out = (tf.cast(x, tf.float32) - mean) * tf.math.rsqrt(var + self.epsilon) * gamma + beta
        return tf.cast(out, self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "max_channels": self.max_channels, "momentum": self.momentum,
                "epsilon": self.epsilon}
