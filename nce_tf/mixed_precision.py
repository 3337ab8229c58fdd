"""Mixed precision for a run: the policy set and restored, loss scaling as ``fit`` does it, a float32 copy.

A Keras dtype policy (``keras.mixed_precision``) decides the dtype layers compute in
(``compute_dtype``) and the dtype their variables are kept in (``variable_dtype``, float32 for
every policy here).  ``--mixed_precision`` picks one of :data:`nce_tf.choices.MIXED_PRECISION`:

- ``float32``: everything in float32 (the default, and what every earlier run did);
- ``mixed_bfloat16``: convs, matmuls and activations in bfloat16 (float32's exponent range,
  8 bits of mantissa: no loss scaling is needed); fast on TPUs and GPUs with bf16 tensor cores
  (Ampere and later) and on CPUs with AMX / AVX512-BF16, slower than float32 elsewhere;
- ``mixed_float16``: float16 compute (5 exponent bits: small gradients underflow), so the loss is
  scaled before the backward pass and the gradients unscaled before the update, with a scale
  that halves on a non-finite gradient (the step is then skipped) and doubles after 2,000 good
  steps: Keras's ``LossScaleOptimizer``, which ``compile`` wraps around the optimizer of ``fit``
  under this policy, and which :func:`loss_scaled` wraps around the super-net's optimizers.

nce-tf's quantizers compute in float32 whatever the policy (:mod:`nce_tf.quant.base`), so the
2-bit grids are the float32 run's.  The global policy is process state: :func:`policy_scope` sets
it for one run and restores the caller's afterwards.

Example:

>>> import keras
>>> from nce_tf import mixed_precision
>>> with mixed_precision.policy_scope("mixed_bfloat16"):
...     keras.layers.Dense(2).dtype_policy.name
'mixed_bfloat16'
>>> keras.mixed_precision.global_policy().name
'float32'
"""

import contextlib

import keras

from nce_tf.choices import check_mixed_precision


@contextlib.contextmanager
def policy_scope(name):
    """Sets Keras's global dtype policy to ``name`` (checked) for the block, then restores the previous one.

    Layers and models built inside take the policy; they keep it after the block (it is in each
    layer's config, so a saved model reloads with it).
    """
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(check_mixed_precision(name))
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def loss_scaled(optimizer, policy_name):
    """``optimizer`` wrapped in ``keras.optimizers.LossScaleOptimizer`` under ``mixed_float16``, else itself.

    What Keras's ``compile`` does for ``fit`` (``auto_scale_loss``), for a custom ``train_step``:
    compute ``optimizer.scale_loss(loss)`` inside the tape, its gradients, then ``optimizer.apply``
    (which unscales them, and skips the step and halves the scale when one is not finite).
    """
    if policy_name == "mixed_float16" and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return keras.optimizers.LossScaleOptimizer(optimizer, name=f"{optimizer.name}_loss_scale")
    return optimizer


def loss_scale(optimizer):
    """The factor ``optimizer.scale_loss`` multiplies a loss by and ``optimizer.apply`` divides gradients
    by: a loss-scale optimizer's current dynamic scale, else the ``loss_scale_factor`` (1 when unset).

    A gradient added to a scaled one (not from the scaled loss) is multiplied by it first, so the
    optimizer's unscaling returns it unchanged.
    """
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer.dynamic_scale
    return optimizer.loss_scale_factor or 1.0


def inner(optimizer):
    """The optimizer a loss-scale optimizer wraps (its slots are the inner one's), else ``optimizer``."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def as_float32(model):
    """``model`` itself when every layer computes in float32, else a float32 copy with its weights.

    A mixed-precision network keeps its variables in float32 already; only its layers' compute
    dtype changes.  The copy (``keras.models.clone_model``, each layer rebuilt from its config at
    ``dtype="float32"``) is the network a float32 run with these weights would be, so what is made
    from it (an export, its calibration ranges and parity checks) is the float32 path's.

    Args:
        model: a functional or Sequential ``keras.Model``.
    """
    if all(layer.dtype_policy.name == "float32" for layer in [model, *model.layers]):
        return model
    with policy_scope("float32"):
        copy = keras.models.clone_model(
            model, clone_function=lambda layer: layer.__class__.from_config({**layer.get_config(), "dtype": "float32"}))
    copy.set_weights(model.get_weights())
    return copy
