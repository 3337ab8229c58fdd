"""Which ops of a TFLite model a delegate took, read off a built LiteRT interpreter.

A delegate (XNNPACK is LiteRT's default on CPU) replaces each run of ops it supports by one
``DELEGATE`` node whose inputs and outputs are the run's boundary tensors; the ops it leaves
run on the builtin kernels. LiteRT's Python interpreter does not expose its execution plan, but
its op list (``_get_ops_details``: the model's ops, then the ``DELEGATE`` nodes) does: an op
belongs to a delegate node when it is reached walking back from the node's outputs through
producers without crossing the node's inputs. That is how the model card says which int4
filters XNNPACK runs and which fall back, from the run rather than from documentation.

XNNPACK is first tried in a child process on a file with a conv or fully-connected requantization
multiplier it may refuse (:func:`xnnpack_suspect`): on one such file (a conv writing a tensor that
was calibrated to 0) LiteRT 2.3.0's delegate aborted the process with a double free instead of
raising, which took a pytest worker down with it.
"""

import os
import subprocess
import sys
import tempfile

import numpy as np

KERNELS = ("auto", "xnnpack", "builtin", "reference")
# What LiteRT raises when a kernel set refuses a file: ValueError when no kernel of the op's
# version is registered, RuntimeError when a delegate or kernel fails to prepare.
REFUSED = (RuntimeError, ValueError)


def interpreter(flatbuffer, kernels="auto"):
    """An allocated LiteRT interpreter of ``flatbuffer``.

    ``kernels``: ``"xnnpack"`` (the default delegate, the builtin kernels for the ops it leaves),
    ``"builtin"`` (the optimized builtin kernels only), ``"reference"`` (the reference kernels),
    or ``"auto"``: XNNPACK, or the builtin kernels when XNNPACK refuses the graph (measured: a
    hidden FULLY_CONNECTED feeding a PACT clip fails XNNPACK's preparation).
    """
    # LiteRT only when a TFLite file is run
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    if kernels not in KERNELS:
        raise ValueError(f"kernels must be one of {KERNELS}. Received: {kernels!r}")
    resolver = {"xnnpack": None, "auto": None, "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
                "reference": OpResolverType.BUILTIN_REF}[kernels]
    try:
        if kernels in ("xnnpack", "auto"):
            suspect = xnnpack_suspect(flatbuffer)
            failure = suspect and xnnpack_failure_in_child(flatbuffer)
            if failure:
                raise RuntimeError(f"XNNPACK refuses this file ({suspect}): {failure}")
        it = Interpreter(model_content=flatbuffer, **({"experimental_op_resolver_type": resolver} if resolver else {}))
        it.allocate_tensors()
    except RuntimeError:
        if kernels != "auto":
            raise
        return interpreter(flatbuffer, "builtin")
    return it


# XNNPACK's quantized conv and fully-connected operators take a requantization multiplier
# s_in * s_w / s_out under 256 (measured: a conv, a depthwise conv and a dense layer at 2.4e3 each
# failed XNNPACK's preparation); a file with one past it is tried in a child process first.
XNNPACK_MULTIPLIER_LIMIT = 256.0
_REQUANTIZED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")
CHILD_TIMEOUT = 120.0  # seconds; preparing a file takes well under one (a hung delegate counts as a refusal)
_CHILD = "import sys; from ai_edge_litert.interpreter import Interpreter; Interpreter(model_path=sys.argv[1]).allocate_tensors()"


def xnnpack_failure_in_child(flatbuffer):
    """``None`` when XNNPACK prepares ``flatbuffer`` in a child process, else how it failed (one line)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.tflite")
        with open(path, "wb") as f:
            f.write(flatbuffer)
        try:
            proc = subprocess.run([sys.executable, "-c", _CHILD, path], capture_output=True, text=True,
                                  timeout=CHILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            return f"a child process preparing it did not finish in {CHILD_TIMEOUT:g} s"
        except OSError as e:  # no process to try it in: not known to be safe
            return f"no child process could try it ({one_line(str(e))})"
    if proc.returncode == 0:
        return None
    if proc.returncode < 0:
        return f"LiteRT's XNNPACK delegate ended a child process with signal {-proc.returncode} while preparing it"
    return "it failed to prepare: " + one_line(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "")


def xnnpack_suspect(flatbuffer):
    """Why XNNPACK may refuse ``flatbuffer`` (its first conv or fully-connected op whose requantization
    multiplier is :data:`XNNPACK_MULTIPLIER_LIMIT` or more), or ``None``; read off an undelegated interpreter."""
    # LiteRT only when a TFLite file is run
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_content=flatbuffer,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    scales = {d["index"]: d["quantization_parameters"]["scales"] for d in it.get_tensor_details()}
    for op in it._get_ops_details():  # noqa: SLF001  the only op listing LiteRT's Python API has
        if op["op_name"] not in _REQUANTIZED_OPS:
            continue
        data, weights = (int(t) for t in op["inputs"][:2])
        if op["op_name"] == "TRANSPOSE_CONV":  # inputs: output shape, filter, data
            data = int(op["inputs"][2])
        s_in, s_w, s_out = scales.get(data, ()), scales.get(weights, ()), scales.get(int(op["outputs"][0]), ())
        if not (len(s_in) and len(s_w) and len(s_out)):
            continue  # a float op: nothing requantized
        worst = float(np.max(s_in[0] * np.asarray(s_w) / s_out[0]))
        if worst >= XNNPACK_MULTIPLIER_LIMIT:
            return (f"op {op['index']} ({op['op_name']}) requantizes by {worst:.3g}, "
                    f"XNNPACK takes under {XNNPACK_MULTIPLIER_LIMIT:g}")
    return None


def delegated(it, details=None):
    """``{op index: True if a delegate runs it}`` for every op of the model (an allocated interpreter;
    ``details``: its ``_get_ops_details()``, when the caller already has them)."""
    if details is None:
        details = it._get_ops_details()  # noqa: SLF001  the only op listing LiteRT's Python API has
    ops = {d["index"]: d for d in details if d["op_name"] != "DELEGATE"}
    producer = {int(t): i for i, d in ops.items() for t in d["outputs"]}
    taken = set()
    for node in (d for d in details if d["op_name"] == "DELEGATE"):
        boundary = {int(t) for t in node["inputs"]}
        todo = [int(t) for t in node["outputs"]]
        while todo:
            t = todo.pop()
            i = producer.get(t)
            if t in boundary or i is None or i in taken:
                continue
            taken.add(i)
            todo.extend(int(u) for u in ops[i]["inputs"] if u >= 0)
    return {i: i in taken for i in ops}


def filter_ops_by_runner(it, filter_tensors):
    """``{op name: {"delegated": n, "kernels": m}}`` over the ops whose filter (input 1) is in ``filter_tensors``.

    ``kernels`` counts the ops left to the interpreter's own kernels (builtin or reference).
    """
    listing = it._get_ops_details()  # noqa: SLF001
    taken = delegated(it, listing)
    details = {d["index"]: d for d in listing}
    out = {}
    for i, by_delegate in taken.items():
        inputs = np.asarray(details[i]["inputs"])
        if len(inputs) > 1 and int(inputs[1]) in filter_tensors:
            counts = out.setdefault(details[i]["op_name"], {"delegated": 0, "kernels": 0})
            counts["delegated" if by_delegate else "kernels"] += 1
    return out


def runners(flatbuffer, filter_tensors):
    """Who runs the ops reading ``filter_tensors``, per kernel set (``{"error": ...}`` where it refuses the file)."""
    out = {}
    for kernels in ("xnnpack", "builtin", "reference"):
        try:
            out[kernels] = filter_ops_by_runner(interpreter(flatbuffer, kernels), filter_tensors)
        except REFUSED as e:
            out[kernels] = {"error": one_line(e)}
    return out


def one_line(error):
    """LiteRT's multi-line error message as one short line, for the model card."""
    return " ".join(str(error).split())[:200]
