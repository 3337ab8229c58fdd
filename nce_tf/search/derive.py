"""Derivation: winner-takes-all widths of a super-net and the ``arch.json`` that records them.

``c_l = C_{l, argmax_j alpha_l,j}`` per row (TAS trains the LAST epoch's genotype; so do we).
The derived network is then built by the zoo's own builders from the width list
(``nce_tf.models.build_model(model, widths)``), randomly initialised, and trained from
scratch with W2A2 QAT by ``tools/train.py --arch=DIR/arch.json``.

The exact cost written into ``arch.json`` is the search space's count of the derived
network, which ``tools/count.py --arch`` reproduces from the built Keras model.
"""

from nce_tf import arch as arch_lib


def derive_widths(net):
    """The argmax width of every row of ``net`` as Python ints."""
    return [int(w) for w in net.argmax_widths().numpy()]


def write_arch(path, space, widths, *, policy, budget, settings, **extra):
    """Writes ``arch.json`` for ``widths`` of ``space`` with costs, bits and the search settings.

    Returns the dict of what was recorded beyond ``model`` and ``widths``.
    """
    macs, params = space.exact_cost(widths)
    record = {
        "macs": macs, "params": params,
        "original_macs": budget.original[0], "original_params": budget.original[1],
        "macs_ratio": macs / budget.original[0], "params_ratio": params / budget.original[1],
        "original_widths": space.default_widths(),
        "w_bits": policy.w_bits, "a_bits": policy.a_bits, "quantization": policy.to_dict(),
        "budget": budget.to_dict(), "within_budget": budget.within(macs, params),
        "search": settings, **extra,
    }
    arch_lib.save_arch(path, space.model, widths, **record)
    return record
