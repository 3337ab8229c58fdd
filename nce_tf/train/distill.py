"""Knowledge distillation (Hinton, Vinyals & Dean, 2015): a student trained on the labels and on a
teacher's softened outputs.

Per example, with ``s`` the student's and ``t`` the teacher's logits, ``y`` the label,
``w = kd_weight`` in ``[0, 1]`` and ``T = kd_temperature > 0``::

    loss = (1 - w) CE(y, s) + w T^2 KL(softmax(t / T) || softmax(s / T))

    KL(p || q) = sum_c p_c (log p_c - log q_c)

The soft term's gradient scales as ``1 / T^2``; the factor ``T^2`` keeps its share of the
gradient the same whatever ``T`` (Hinton et al., section 2).  ``w = 0`` is the plain
cross-entropy.  TAS (Dong & Yang, 2019) trains its searched networks this way, from the
unpruned network, and low-bit QAT recipes distil from the float network they started from.

:class:`Distiller` wraps a student and a teacher into one ``keras.Model`` to ``compile`` and
``fit``: the teacher runs in inference mode (BN moving statistics, no dropout) inside the same
``train_step``, without gradients (its weights are frozen: ``teacher.trainable`` is set to
``False``); only the student trains, and the student is the model to save, count and export
(the teacher's cost is not the student's).  Under a ``tf.distribute`` strategy every replica
distils its share of the global batch and the loss is the global-batch mean, as Keras scales
its own losses: the per-replica mean of the per-example losses and the student's regularization
losses (weight decay, PACT's clip penalty) divided by the replica count, whose gradients the
optimizer sums.

Example:

>>> import keras, numpy as np
>>> from nce_tf.train.distill import kd_loss
>>> s, t = np.array([[2.0, 0.0, -1.0]], "float32"), np.array([[1.0, 1.0, 0.0]], "float32")
>>> float(kd_loss(np.array([0]), s, t, kd_weight=0.0, temperature=4.0)[0])   # the cross-entropy
0.1698...
>>> student = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
>>> teacher = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
>>> distiller = Distiller(student, teacher, kd_weight=0.5, temperature=4.0)
>>> distiller.compile(keras.optimizers.SGD(0.1), metrics=["accuracy"])
>>> history = distiller.fit(np.ones((8, 4)), np.arange(8) % 3, epochs=1, verbose=0)
>>> sorted(history.history)
['accuracy', 'loss']
"""

import keras
import tensorflow as tf
from keras import ops

from nce_tf.errors import UsageError
from nce_tf.search.ops.keras_read import applies_softmax
from nce_tf.train.config import check_distillation


def kd_loss(labels, student_logits, teacher_logits, kd_weight, temperature):
    """The distillation loss of every example (the module doc's formula).

    Args:
        labels: integer labels, ``[B]`` (or ``[B, 1]``).
        student_logits, teacher_logits: ``[B, classes]``.
        kd_weight: ``w`` in ``[0, 1]``.
        temperature: ``T > 0``.

    Returns:
        The per-example losses, ``[B]``.
    """
    check_distillation(kd_weight, temperature)
    s = ops.convert_to_tensor(student_logits)
    ce = ops.sparse_categorical_crossentropy(ops.reshape(labels, (-1,)), s, from_logits=True)
    if kd_weight == 0:
        return ce
    t = ops.cast(ops.convert_to_tensor(teacher_logits), s.dtype)
    log_p_teacher = ops.log_softmax(t / temperature, axis=-1)
    log_p_student = ops.log_softmax(s / temperature, axis=-1)
    kl = ops.sum(ops.exp(log_p_teacher) * (log_p_teacher - log_p_student), axis=-1)
    return (1.0 - kd_weight) * ce + (kd_weight * temperature ** 2) * kl


@keras.saving.register_keras_serializable(package="nce_tf")
class Distiller(keras.Model):
    """A student trained with :func:`kd_loss` against a frozen teacher; ``call`` is the student's.

    ``compile`` it with an optimizer and metrics (no loss: the loss is :func:`kd_loss`), ``fit``
    it on ``(images, labels)``; then save / count / export ``distiller.student``.
    ``evaluate`` reports the distillation loss; evaluate the student for its cross-entropy.

    Args:
        student: the ``keras.Model`` to train (logits out).
        teacher: a ``keras.Model`` with the same inputs and classes (logits out); set untrainable.
        kd_weight: ``w`` in ``[0, 1]``.
        temperature: ``T > 0``.
        **kwargs: ``keras.Model`` arguments (``name``).
    """

    def __init__(self, student, teacher, kd_weight=0.5, temperature=4.0, **kwargs):
        super().__init__(**kwargs)
        check_distillation(kd_weight, temperature)
        if not isinstance(student, keras.Model) or not isinstance(teacher, keras.Model):
            raise UsageError(f"Distiller takes two keras.Model objects. Received: student={type(student).__name__}, "
                             f"teacher={type(teacher).__name__}.")
        self.student, self.teacher = student, teacher
        teacher.trainable = False
        self.kd_weight, self.temperature = float(kd_weight), float(temperature)

    def call(self, inputs, training=None):
        return self.student(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """This replica's share of the global-batch loss (Keras's convention: its train step sums
        the replicas' gradients and multiplies the reported loss back by the replica count)."""
        teacher_logits = ops.stop_gradient(self.teacher(x, training=False))
        per_example = kd_loss(y, y_pred, teacher_logits, self.kd_weight, self.temperature)
        if sample_weight is not None:
            per_example = per_example * ops.cast(ops.reshape(sample_weight, (-1,)), per_example.dtype)
        loss = ops.mean(per_example)
        if self.student.losses:
            loss = loss + ops.cast(ops.sum(self.student.losses), loss.dtype)
        return loss / tf.distribute.get_strategy().num_replicas_in_sync

    def get_config(self):
        return {**super().get_config(), "student": keras.saving.serialize_keras_object(self.student),
                "teacher": keras.saving.serialize_keras_object(self.teacher), "kd_weight": self.kd_weight,
                "temperature": self.temperature}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("student", "teacher"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def load_teacher(value, input_shape, num_classes, field="teacher"):
    """The teacher a ``--teacher`` value names, checked against the data.

    Args:
        value: a ``.keras`` file or a finished run's work directory
            (:func:`nce_tf.train.float_init.finished_model`).
        input_shape: the data's image shape.
        num_classes: the data's class count.
        field: the setting's name, for messages.

    Raises:
        UsageError: not loadable, another image shape or class count, or probabilities instead of logits.
    """
    # nce_tf.sources sits above this package: reached lazily, to resolve a model name (WORKSPACE.md)
    from nce_tf.sources.user import load_keras_file
    from nce_tf.train.float_init import finished_model

    received = f"{field}={value!r}"
    teacher = load_keras_file(finished_model(value, field)[0], received)
    if len(teacher.inputs) != 1 or len(teacher.outputs) != 1:
        raise UsageError(f"The teacher must have one input and one output. Received: {received} with "
                         f"{len(teacher.inputs)} inputs and {len(teacher.outputs)} outputs.")
    classes = teacher.outputs[0].shape[-1]
    if classes != num_classes:
        raise UsageError(f"The teacher's classes differ from the data's: it has {classes} outputs, the dataset "
                         f"{num_classes} classes. Received: {received}.")
    shape = tuple(teacher.inputs[0].shape[1:])
    if shape != tuple(input_shape):
        raise UsageError(f"The teacher takes other images: {shape}, the dataset's are {tuple(input_shape)}. "
                         f"Received: {received}.")
    last = teacher.layers[-1]
    if applies_softmax(last):
        raise UsageError(f"The teacher must output logits; its last layer {last.name!r} applies a softmax. "
                         f"Received: {received}.")
    return teacher
