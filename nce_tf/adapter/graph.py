"""A user's Keras model as a list of layers and the layers that feed them, read off its config.

The functional model's serialized config (``model.get_config()``: every layer with its
``inbound_nodes``, each input a ``keras_history`` of ``[layer, node, tensor]``) is Keras's
public description of the graph, so the adapter never touches private attributes.  A
``Sequential`` model is a chain.  Layer objects come from ``model.operations`` for their
configs, weights and output shapes (``keras.ops`` arithmetic on symbolic tensors, ``x + 3.0``,
is an operation there, with its numbers in the call's arguments).
"""

import dataclasses

import keras

from nce_tf.errors import UsageError


@dataclasses.dataclass
class LayerRef:
    """One layer of the user's graph: its object, class name and the layers it reads."""

    name: str
    layer: object  # a Keras layer, or a ``keras.ops`` operation (``x + 3.0``: ``model.operations``)
    inputs: list
    shape: tuple  # output shape without the batch axis
    consts: list = dataclasses.field(default_factory=list)  # numbers among the call's arguments (3.0)

    @property
    def kind(self):
        return type(self.layer).__name__


def _history(arg):
    """The producer layer names inside one serialized call argument (tensors, lists of tensors)."""
    if isinstance(arg, dict) and arg.get("class_name") == "__keras_tensor__":
        name, node, index = arg["config"]["keras_history"]
        if index != 0:
            raise UsageError(f"The adapter needs single-output layers. Received: the output {index} of layer {name!r}.")
        return [name]
    if isinstance(arg, (list, tuple)):
        return [n for a in arg for n in _history(a)]
    return []


def read_graph(model):
    """The layers of ``model`` in topological order, as :class:`LayerRef` (inputs by name).

    Raises ``UsageError`` for what is not a single-input, single-output graph of layers, and
    for a layer used at more than one place (its weights would be shared by two widths).
    """
    if not isinstance(model, keras.Model):
        raise UsageError(f"adapt() takes a built Keras model. Received: model={type(model).__name__}.")
    if not model.built or not model.inputs:
        raise UsageError(f"adapt() takes a built model (call it or give it an Input). Received: model={model.name!r}.")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UsageError(f"adapt() takes a model with one input and one output. Received: "
                         f"{len(model.inputs)} inputs and {len(model.outputs)} outputs in {model.name!r}.")
    if isinstance(model, keras.Sequential):
        refs = [LayerRef("input", None, [], tuple(model.inputs[0].shape[1:]))]
        prev = "input"
        for layer in model.layers:
            refs.append(LayerRef(layer.name, layer, [prev], tuple(layer.output.shape[1:])))
            prev = layer.name
        return refs
    config = model.get_config()
    if "layers" not in config:
        raise UsageError(f"adapt() takes a functional or Sequential model, not a subclassed one. "
                         f"Received: {type(model).__name__} {model.name!r}.")
    refs = []
    operations = {op.name: op for op in model.operations}  # layers and keras.ops operations
    for entry in config["layers"]:
        name = entry["name"]
        nodes = entry.get("inbound_nodes", [])
        if len(nodes) > 1:
            raise UsageError(f"Layer {name!r} is used at {len(nodes)} places; the adapter needs each layer "
                             "once (a shared layer cannot take two widths). Received: a shared layer.")
        layer = operations[name]
        inputs = _history([nodes[0]["args"], list(nodes[0].get("kwargs", {}).values())]) if nodes else []
        consts = [float(a) for a in nodes[0]["args"] if isinstance(a, (int, float))] if nodes else []
        if not nodes:  # the input layer: nothing feeds it
            layer = None
        elif isinstance(layer, keras.Model):
            raise UsageError(f"Layer {name!r} is a nested model; the adapter needs a flat graph of layers. "
                             "Received: a nested model (rebuild it as one functional model).")
        shape = tuple(operations[name].output.shape[1:])
        refs.append(LayerRef(name, layer, inputs, shape, consts))
    return refs
