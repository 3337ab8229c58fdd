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

where ``M_j`` is the CWI matrix padded with zero rows beyond ``C_j`` (:mod:`nce_tf.search.cwi`).
This is exactly TAS's two-BN forward, at the cost of one fused normalisation and one
channel matmul (``tf_facts.md``, "Supernet speed": the straightforward port spends half its time
in two BNs).  The running statistics of candidates ``a`` and ``b`` (their first ``C_j``
channels) are updated from the batch, momentum 0.1 in PyTorch terms.

Weight decay (coupled L2) is returned by ``call`` on the live slice only, so weights no
candidate uses are neither decayed nor moved: they keep their initial values until an
expansion re-initialises them anyway.
"""

import math

import keras
import tensorflow as tf

from nce_tf import quant
from nce_tf.search.candidates import MAX_CANDIDATES
from nce_tf.search.cwi import cwi_matrix


def add_leading(a, b):
    """Residual add of tensors of different widths: the narrower adds into the leading channels."""
    ca, cb = tf.shape(a)[-1], tf.shape(b)[-1]
    c = tf.maximum(ca, cb)
    pad = lambda t, ct: tf.pad(t, [[0, 0], [0, 0], [0, 0], [0, c - ct]])  # noqa: E731
    return pad(a, ca) + pad(b, cb)


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
    """

    def __init__(self, max_in, max_out, base_width, kernel_size=3, strides=1, kernel_quantizer=None,
                 weight_decay=0.0, momentum=0.9, epsilon=1e-5, num_candidates=MAX_CANDIDATES, **kwargs):
        super().__init__(**kwargs)
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
        self.kernel = self.add_weight(
            name="kernel", shape=(k, k, self.max_in, c),
            initializer=keras.initializers.RandomNormal(stddev=self.init_stddev))
        self.gamma = self.add_weight(name="gamma", shape=(j, c), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(j, c), initializer="zeros")
        self.moving_mean = self.add_weight(name="moving_mean", shape=(j, c), initializer="zeros",
                                           trainable=False)
        self.moving_variance = self.add_weight(name="moving_variance", shape=(j, c), initializer="ones",
                                               trainable=False)
        self._quantizer_weights = (
            self.kernel_quantizer.build(self.kernel.shape, self) if self.kernel_quantizer else {})

    def live_kernel(self, c_in, c_out):
        """``W[:, :, :c_in, :c_out]`` fake-quantized: what a forward at these widths computes with."""
        k = self.kernel_size
        w = tf.slice(self.kernel, [0, 0, 0, 0], tf.stack([k, k, c_in, c_out]))
        wq = self.kernel_quantizer(w, self._quantizer_weights) if self.kernel_quantizer else w
        return w, wq

    def call(self, x, widths, index, mix, training=False):
        """Returns ``(output [N, H, W, C*], L2 of the live kernel)``.

        Args:
            x: input with ``c_in <= max_in`` channels.
            widths: int32 ``[2]``, ``(C_a, C_b)``.
            index: int32 ``[2]``, the candidate indices ``(a, b)``.
            mix: float32 ``[2]``, the mixing weights ``(h_a, h_b)``.
        """
        c_star = tf.reduce_max(widths)
        w, wq = self.live_kernel(tf.shape(x)[-1], c_star)
        y = tf.nn.conv2d(x, wq, self.strides, padding="SAME")
        gamma = tf.gather(self.gamma, index)[:, :c_star]
        beta = tf.gather(self.beta, index)[:, :c_star]
        if training:
            replica = tf.distribute.get_replica_context()
            if replica is not None and replica.num_replicas_in_sync > 1:
                y, mean, variance = self._normalize_across_replicas(y, replica)
            else:
                ones = tf.ones([c_star], y.dtype)
                y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                    y, ones, tf.zeros_like(ones), epsilon=self.epsilon, is_training=True)
            self._update_statistics(widths, index, mean, variance, c_star)
            scale, shift = gamma, beta
        else:
            mean = tf.gather(self.moving_mean, index)[:, :c_star]
            var = tf.gather(self.moving_variance, index)[:, :c_star]
            scale = gamma * tf.math.rsqrt(var + self.epsilon)
            shift = beta - mean * scale
        m = cwi_matrix(widths, c_star)  # [2, C*, C*], zero rows beyond each C_j
        a = tf.einsum("j,jc,jcd->cd", mix, scale, m)
        bias = tf.einsum("j,jc,jcd->d", mix, shift, m)
        out = tf.einsum("nhwc,cd->nhwd", y, a) + bias
        l2 = 0.5 * self.weight_decay * tf.reduce_sum(tf.square(w)) if self.weight_decay else 0.0
        return out, l2

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
        n = tf.cast(tf.reduce_prod(tf.shape(y)[:-1]), y.dtype)
        total, count = replica.all_reduce(tf.distribute.ReduceOp.SUM, [tf.reduce_sum(y, axis=[0, 1, 2]), n])
        mean = total / count
        squares = replica.all_reduce(tf.distribute.ReduceOp.SUM, tf.reduce_sum(tf.square(y - mean), axis=[0, 1, 2]))
        variance = squares / count
        y_hat = (y - mean) * tf.math.rsqrt(variance + self.epsilon)
        return y_hat, mean, variance * count / tf.maximum(count - 1.0, 1.0)

    def _update_statistics(self, widths, index, mean, variance, c_star):
        rows = tf.one_hot(index, self.num_candidates)  # [2, J]
        cols = tf.cast(tf.range(self.max_out)[None, :] < widths[:, None], tf.float32)  # [2, C_max]
        mask = tf.einsum("jr,jc->rc", rows, cols)  # 1 on (a, :C_a) and (b, :C_b)
        rate = (1.0 - self.momentum) * mask
        pad = [[0, self.max_out - c_star]]
        for var, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
            var.assign(var + rate * (tf.pad(batch, pad)[None, :] - var))

    def get_config(self):
        return {
            **super().get_config(), "max_in": self.max_in, "max_out": self.max_out,
            "base_width": self.base_width, "kernel_size": self.kernel_size, "strides": self.strides,
            "kernel_quantizer": quant.serialize(self.kernel_quantizer), "weight_decay": self.weight_decay,
            "momentum": self.momentum, "epsilon": self.epsilon, "num_candidates": self.num_candidates,
        }


@keras.saving.register_keras_serializable(package="nce_tf")
class SearchDense(keras.layers.Layer):
    """Classifier whose input columns follow the producer: ``x @ Q(W[:c_in]) + b``.

    Args:
        max_in: most input features.
        units: output units (classes).
        kernel_quantizer: weight quantizer (``None`` = float, the paper's rule).
        weight_decay: coupled L2 coefficient of the live kernel slice.
    """

    def __init__(self, max_in, units, kernel_quantizer=None, weight_decay=0.0, **kwargs):
        super().__init__(**kwargs)
        self.max_in, self.units = int(max_in), int(units)
        self.kernel_quantizer = quant.get(kernel_quantizer)
        self.weight_decay = float(weight_decay)

    def build(self, input_shape=None):
        self.kernel = self.add_weight(name="kernel", shape=(self.max_in, self.units),
                                      initializer=keras.initializers.RandomNormal(stddev=0.01))
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
        self._quantizer_weights = (
            self.kernel_quantizer.build(self.kernel.shape, self) if self.kernel_quantizer else {})

    def call(self, x):
        w = self.kernel[: tf.shape(x)[-1]]
        wq = self.kernel_quantizer(w, self._quantizer_weights) if self.kernel_quantizer else w
        l2 = 0.5 * self.weight_decay * tf.reduce_sum(tf.square(w)) if self.weight_decay else 0.0
        return tf.matmul(x, wq) + self.bias, l2

    def get_config(self):
        return {**super().get_config(), "max_in": self.max_in, "units": self.units,
                "kernel_quantizer": quant.serialize(self.kernel_quantizer),
                "weight_decay": self.weight_decay}
