"""A per-layer cost table in the spirit of ``larq.models.summary``.

Example:

>>> import nce_tf
>>> print(nce_tf.cost.summary(nce_tf.cost.count_arch("resnet8")))  # doctest: +ELLIPSIS
Layer ...
"""


def _human(n, unit=""):
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:.2f}{suffix}{unit}"
    return f"{n:g}{unit}"


def summary(cost):
    """Formats a :class:`nce_tf.cost.ModelCost` as a plain-text table."""
    header = ("Layer", "Kind", "In", "Out", "Kernel", "Output", "W bits", "A bits", "MACs", "Params", "Memory",
              "BOPs")
    rows = [
        (r.name, r.kind, str(r.in_channels), str(r.out_channels), r.kernel, r.output_size,
         str(r.w_bits), str(r.a_bits), _human(r.macs), _human(r.params), _human(r.memory_bytes, "B"), _human(r.bops))
        for r in cost.layers
    ]
    rows.append((f"batch norm ({cost.bn_layers} layers)", "bn", "", "", "", "", "32", "", "0",
                 _human(cost.bn_params), _human(cost.bn_params * 4, "B"), "0"))
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = "  ".join("-" * w for w in widths)
    fmt = lambda r: "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    ratio = cost.float_memory_bytes / cost.memory_bytes if cost.memory_bytes else 1.0
    out = [fmt(header), line, *map(fmt, rows), line,
           f"Total MACs: {cost.macs:,} ({_human(cost.macs)})",
           f"Total params: {cost.params:,} ({_human(cost.params)})",
           f"Weight memory: {_human(cost.memory_bytes, 'B')} at the layers' bit widths vs "
           f"{_human(cost.float_memory_bytes, 'B')} in float32 ({ratio:.1f}x smaller); "
           f"{cost.memory_bytes:,.2f} bytes",
           f"Total BOPs (MACs x W bits x A bits): {cost.bops:,} ({_human(cost.bops)})"]
    return "\n".join(out)
