"""Exact cost accounting (MACs, parameters, weight memory) and the per-layer summary."""

from nce_tf.cost.count import LayerCost, ModelCost, count_arch, count_model
from nce_tf.cost.summary import summary

__all__ = ["LayerCost", "ModelCost", "count_arch", "count_model", "summary"]
