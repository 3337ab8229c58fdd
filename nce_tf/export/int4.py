"""``model_int4.tflite``: the int8 TFLite file with its low-bit filters stored as int4.

Why: a 2-bit kernel in ``model_int8.tflite`` holds the integers ``{-3, -1, 1, 3}`` (times the
sign of its folded BN scale; :mod:`nce_tf.export.tflite_graph`), one per byte. They are int4
values, and LiteRT's builtin ``CONV_2D``, ``DEPTHWISE_CONV_2D`` and ``FULLY_CONNECTED`` kernels
take int4 filters with int8 activations (op versions 7, 7 and 10, runtime >= 2.11: TFLite's
``tools/versioning/op_version.cc`` and ``runtime_version.cc``): they unpack the filter to int8
and run the same int8 arithmetic. So the same integers with the same scales, packed two a byte,
give the int8 file's outputs bit for bit on those kernels, in half the filter bytes.

What changes, filter by filter (everything else is the int8 file's, tensor for tensor):

- the tensor's type ``INT8 -> INT4``; its quantization (per-channel scales, zero points 0,
  quantized dimension) is kept;
- its buffer: element ``2i`` in the low nibble of byte ``i``, element ``2i + 1`` in the high
  nibble, two's complement, an odd count leaving the last high nibble 0 (TFLite's dense int4
  layout: ``tensorflow/compiler/mlir/lite/utils/low_bit_utils.cc``, ``PackInt4ValuesDensely``);
- the operator points at an operator code of the int4 version (appended; the int8 ops keep
  theirs), and the ``min_runtime_version`` metadata becomes 2.11.0 if it was lower.

Which filters: the exporter names each layer's filter (:func:`~nce_tf.export.tflite_graph.kernel_tag`);
a filter is packed when its name carries the tag of one of the layers asked for (the quantized
layers), it is the filter input of one of the three ops, its tensor and buffer are used by
nothing else, and every value is in ``[-7, 7]`` (so a 3-bit zero-free or 4-bit narrow grid
qualifies too, a 4-bit zero-free one does not). A layer that fails any of these stays int8, and
the report says why. The file is read and written with the flatbuffer schema module that ships
with ``ai-edge-litert`` (``schema_py_generated``, object API: ``ModelT.InitFromObj`` / ``Pack``).

Kernels and delegates, measured with ``ai-edge-litert`` 2.3.0 on x86: the builtin kernels run
all three with int4 filters, bit for bit as the int8 file; the default XNNPACK delegate takes an
int4 ``FULLY_CONNECTED`` (per-tensor scale; same outputs as its int8 twin) but leaves int4
``CONV_2D`` and ``DEPTHWISE_CONV_2D`` to the builtin kernels, the rest of the graph staying
delegated; the reference kernels (``BUILTIN_REF``) run int4 ``CONV_2D`` and ``FULLY_CONNECTED`` but
have no ``DEPTHWISE_CONV_2D`` version 7 and refuse such a file. The exporter measures who runs
each int4 op again on every export (:mod:`nce_tf.export.delegation`) and writes it to the model card.
"""

import flatbuffers
import numpy as np

INT4_VERSIONS = {"CONV_2D": 7, "DEPTHWISE_CONV_2D": 7, "FULLY_CONNECTED": 10}
MIN_RUNTIME = (2, 11, 0)
_FILTER_INPUT = 1  # the filter is input 1 of all three ops


def pack_int4(values):
    """Packs int8 values in ``[-8, 7]`` two a byte, the first of each pair in the low nibble."""
    nibbles = (np.asarray(values, "int8").ravel().astype("uint8") & 0xF)
    if nibbles.size % 2:
        nibbles = np.append(nibbles, np.uint8(0))
    return (nibbles[0::2] | (nibbles[1::2] << 4)).astype("uint8")


def unpack_int4(packed, count):
    """The int8 values of :func:`pack_int4`'s output (sign-extended nibbles)."""
    packed = np.asarray(packed, "uint8")
    nibbles = np.stack([packed & 0xF, packed >> 4], axis=1).ravel()[:count]
    return np.where(nibbles > 7, nibbles.astype("int16") - 16, nibbles).astype("int8")


def _schema():
    # LiteRT's flatbuffer schema only when an int4 file is written
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def read_model(flatbuffer):
    """The flatbuffer as the schema's object tree (``ModelT``)."""
    s = _schema()
    return s.ModelT.InitFromObj(s.Model.GetRootAsModel(flatbuffer, 0))


def write_model(model):
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def op_name(model, op):
    """``CONV_2D`` etc.: an operator's builtin name."""
    s = _schema()
    code = model.operatorCodes[op.opcodeIndex]
    number = max(code.builtinCode, code.deprecatedBuiltinCode)  # small codes live in the deprecated field
    return next(k for k, v in vars(s.BuiltinOperator).items() if v == number)


def tensor_name(tensor):
    return tensor.name.decode() if isinstance(tensor.name, bytes) else tensor.name


def _why_not(model, op, index, uses, tensor_uses):
    s = _schema()
    tensor = model.subgraphs[0].tensors[index]
    data = model.buffers[tensor.buffer].data
    if op_name(model, op) not in INT4_VERSIONS:
        return f"its op {op_name(model, op)} has no int4 filter kernel"
    if tensor.type != s.TensorType.INT8 or data is None:
        return "its filter is not a constant int8 tensor"
    if uses[tensor.buffer] > 1 or tensor_uses[index] > 1:
        return "its filter's buffer is shared with another tensor or op"
    q = tensor.quantization
    if q is None or q.zeroPoint is None or np.any(np.asarray(q.zeroPoint) != 0):
        return "its filter is not symmetrically quantized"
    values = np.asarray(data, "uint8").view("int8")
    if np.abs(values.astype("int16")).max() > 7:
        return f"its integers reach {int(np.abs(values.astype('int16')).max())}, outside int4's [-7, 7]"
    return None


def to_int4(flatbuffer, tags):
    """The int4 file of an int8 flatbuffer; returns ``(bytes, report)``.

    Args:
        flatbuffer: ``model_int8.tflite``'s bytes.
        tags: ``{kernel tag: layer name}`` of the layers whose filters to pack (the quantized ones).

    Returns:
        The new flatbuffer and ``{"int4": [{"layer", "op", "tensor", "int8_bytes", "int4_bytes"}],
        "int8": [{"layer", "reason"}]}``.
    """
    s = _schema()
    model = read_model(flatbuffer)
    if len(model.subgraphs) != 1:
        raise ValueError("to_int4 expects the exporter's one-subgraph model")
    graph = model.subgraphs[0]
    uses = np.bincount([t.buffer for t in graph.tensors], minlength=len(model.buffers))
    tensor_uses = np.bincount([i for op in graph.operators for i in op.inputs if i >= 0],
                              minlength=len(graph.tensors))
    found = {}
    for op in graph.operators:
        if len(op.inputs) <= _FILTER_INPUT or op.inputs[_FILTER_INPUT] < 0:
            continue
        parts = tensor_name(graph.tensors[op.inputs[_FILTER_INPUT]]).split(";")
        for tag in tags:
            if tag in parts:
                found.setdefault(tag, []).append(op)
    report = {"int4": [], "int8": []}
    codes = {}
    for tag, layer in tags.items():
        ops = found.get(tag, [])
        reason = ("no filter carries its name" if not ops else
                  "its name is on more than one filter" if len(ops) > 1 else
                  _why_not(model, ops[0], ops[0].inputs[_FILTER_INPUT], uses, tensor_uses))
        if reason:
            report["int8"].append({"layer": layer, "reason": reason})
            continue
        op = ops[0]
        tensor = graph.tensors[op.inputs[_FILTER_INPUT]]
        buffer = model.buffers[tensor.buffer]
        int8 = np.asarray(buffer.data, "uint8").view("int8")
        buffer.data = pack_int4(int8)
        tensor.type = s.TensorType.INT4
        name = op_name(model, op)
        if name not in codes:  # one int4 code per op kind, so the int8 ops keep their version
            code = s.OperatorCodeT()
            original = model.operatorCodes[op.opcodeIndex]
            code.builtinCode, code.deprecatedBuiltinCode = original.builtinCode, original.deprecatedBuiltinCode
            code.version = max(original.version, INT4_VERSIONS[name])
            model.operatorCodes.append(code)
            codes[name] = len(model.operatorCodes) - 1
        op.opcodeIndex = codes[name]
        report["int4"].append({"layer": layer, "op": name, "tensor": int(op.inputs[_FILTER_INPUT]),
                               "int8_bytes": int(int8.size), "int4_bytes": int(buffer.data.size)})
    if report["int4"]:
        _raise_min_runtime(model)
    return write_model(model), report


def _raise_min_runtime(model):
    for entry in model.metadata or []:
        if entry.name not in (b"min_runtime_version", "min_runtime_version"):
            continue
        buffer = model.buffers[entry.buffer]
        text = bytes(np.asarray(buffer.data, "uint8")).rstrip(b"\0").decode()
        try:
            current = tuple(int(p) for p in text.split("."))
        except ValueError:
            current = ()
        if current < MIN_RUNTIME:
            # The converter pads the string with zeros to a fixed width; keep the width.
            new = ".".join(map(str, MIN_RUNTIME)).encode()
            buffer.data = np.frombuffer(new.ljust(max(len(buffer.data), len(new)), b"\0"), "uint8").copy()
