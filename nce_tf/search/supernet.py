"""``SuperNet``: the NCE/TAS search model, a ``keras.Model`` with a bi-level ``train_step``.

The network is the zoo model's :class:`~nce_tf.search.space.SearchSpace` graph with every conv
a :class:`~nce_tf.search.layers.SearchConv2D` (kernels sized for 2X) and every ReLU a PACT site,
quantized exactly as the final network will be (``QuantPolicy``: W2A2 body, float first conv,
classifier and shortcuts by default).  Architecture parameters are kept apart from weights:

- ``alpha`` ``[L, 16]`` (``arch_variables``), one row per searchable conv, entries beyond the
  row's live candidate count ``K_l`` (``num_candidates``) masked out of every softmax;
- everything else trainable (kernels, per-candidate BN, classifier, PACT clips) is in
  ``weight_variables``.

**Sampling** (TAS ``select2withP``), once per forward, for all rows: Gumbel noise ``g``,
``l = (log_softmax(alpha) + g) / tau``, two distinct indices drawn from ``softmax(l)`` without
replacement (the Gumbel-top-2 trick: top-2 of ``log softmax(l) + g'``, which is the same
distribution as two successive draws), and mixing weights ``h = softmax(l_a, l_b)``, so the
cross-entropy reaches ``alpha`` through ``h`` (``alpha_a`` and ``alpha_b`` only).  Each forward
draws its own sample; the random state is a ``keras.random.SeedGenerator``.  Under a
``tf.distribute`` strategy the sample is shared: every replica reads the same mirrored
generator state, so all replicas draw the same pair per forward (one sample per step, as on
one device) and the replica count does not change the search (``nce_tf.distribute``).

**One training step** (``train_step``, data ``((x_w, y_w), (x_a, y_a))``):

1. weight step on the weight half: CE + coupled L2 on the live kernels + PACT L2, SGD;
2. architecture step (when ``arch_updates`` is on, i.e. after the warm-up) on the other half:
   CE + ``sum_u lambda_u L_u`` over the budget's units (:mod:`nce_tf.search.cost_model`,
   :mod:`nce_tf.search.units`: MACs, PARAMs, memory, BOPs), Adam on ``alpha``
   with TAS's coupled weight decay, gradients of inactive entries zeroed (one Adam on the sum, or
   with ``arch_balance="split"`` one per part: :mod:`nce_tf.search.arch_balance`).  Each step also
   adds to the instruments :meth:`SuperNet.take_arch_diagnostics` reads (gradient parts, their
   norms, how often each cost term pushed).  The CE's gradient
   comes from the one backward pass through the network, the cost's from a second tape over the
   cost model alone (no network in it), so the two parts are recorded apart at no extra
   backward pass (``take_alpha_grads``).  ``arch_steps > 1`` runs that many architecture steps,
   each on its own slice of the architecture batch.

**Mixed precision.**  Under a ``mixed_float16`` / ``mixed_bfloat16`` policy the network computes in
the policy's dtype (:mod:`nce_tf.search.layers`) while the super-net's own state (``alpha``, ``tau``,
the instruments) is read in float32, so the sampling, the cost model and the arch steps are the
float32 ones.  Under ``mixed_float16`` :meth:`SuperNet.configure_optimizers` wraps the weight
optimizer, and the one stepping alpha's CE part, in ``keras.optimizers.LossScaleOptimizer``, and
both steps scale their loss as Keras's ``fit`` does (:mod:`nce_tf.mixed_precision`).

Both optimizers are built when the super-net is (``tf_facts.md``: a second optimizer built
lazily inside a distributed step fails).  Expansion (:mod:`nce_tf.search.expansion`) changes
``num_candidates``, ``alpha`` and weight slices between steps; no retracing is needed since
every width is read in-graph.

Example:

>>> from nce_tf.models import QuantPolicy
>>> from nce_tf.search import SuperNet
>>> from nce_tf.sources import build_space
>>> net = SuperNet(build_space("resnet8"), policy=QuantPolicy(w_bits=2, a_bits=2))
>>> tuple(net.alpha.shape), net.num_candidates.numpy().tolist()
((7, 16), [8, 8, 8, 8, 8, 8, 8])
"""

import types
import zlib

import keras
import numpy as np
import tensorflow as tf

from nce_tf import mixed_precision, onednn
from nce_tf.errors import UsageError
from nce_tf.models import QuantPolicy
from nce_tf.search.arch_balance import ArchOptimizerPair
from nce_tf.search.candidates import MAX_CANDIDATES, search_table
from nce_tf.search.config import ARCH_BALANCES, EXPANSION_INITS, SearchConfig
from nce_tf.search.cost_model import CostModel, constraint_loss
from nce_tf.search.layers import check_sawb_scope
from nce_tf.search.merge import check_pair_merge
from nce_tf.search.ops import Forward
from nce_tf.search.units import UNITS, Budget

onednn.widen_primitive_cache()  # a search's convs change shape at every step (nce_tf/onednn.py)
_MASKED = -1e9  # logit of an inactive candidate: exp() is exactly 0, gradients stay finite


class SuperNet(keras.Model):
    """The searchable super-network of one zoo model (see the module doc).

    Args:
        space: a :class:`nce_tf.search.space.SearchSpace`.
        policy: a :class:`nce_tf.models.QuantPolicy` (quantization during the search).
        mode: ``nce`` (8 live candidates, growing to 16) or ``tas`` (fixed space).
        tas_space: ``1x8`` | ``2x8`` | ``2x16`` for ``mode="tas"``.
        budget: a :class:`~nce_tf.search.units.Budget` (default: MACs and PARAMs at the original
            network's, the config's defaults).
        weight_decay: coupled L2 of conv and dense kernels (live slices).
        seed: seed of the weights' initialisation and of the Gumbel sampling.
        alpha_stddev: std of alpha's initial values (TAS: 0.01).
        width_ratios: the width grid up to 1X (``SearchConfig.width_ratios``).
        expansion_init: ``"fresh"`` or ``"warm"``: how an expansion starts its new candidate
            (:func:`nce_tf.search.expansion.expand`).
        sawb_scope: ``"pair"`` or ``"candidate"``: what the searchable layers' weight quantizer sees
            (:mod:`nce_tf.search.layers`, "Quantizer scope").
        pair_merge: ``"cwi"`` (TAS) or ``"pad"``: how the searchable layers align a pair's narrower
            candidate to the wider one's channels (:mod:`nce_tf.search.merge`).
        max_width_ratio: the widest a row may grow by expansion, as a multiple of its width (2: 2X).
    """

    def __init__(self, space, policy=None, *, mode="nce", tas_space="1x8", budget=None,
                 weight_decay=0.0, seed=0, alpha_stddev=0.01, width_ratios="nce", expansion_init="fresh",
                 sawb_scope="pair", max_width_ratio=2.0, pair_merge="cwi", name=None):
        super().__init__(name=name or f"{space.keras_name}_supernet")
        self.space, self.policy = space, policy or QuantPolicy()
        self.mode, self.tas_space = mode, tas_space
        self.width_ratios = width_ratios
        if expansion_init not in EXPANSION_INITS:
            raise UsageError(f"Invalid expansion_init. Received: expansion_init={expansion_init!r}. "
                             f"Allowed: {', '.join(EXPANSION_INITS)}.")
        self.expansion_init, self.sawb_scope = expansion_init, check_sawb_scope(sawb_scope)
        self.pair_merge = check_pair_merge(pair_merge)
        # Per row: its distinct candidates (padded), how many start live, how many can be live
        # (a pinned row: 1 and 1).
        table, k_init, self.k_caps = search_table(space, mode, tas_space, width_ratios, max_width_ratio)
        self.k_init = np.asarray(k_init, dtype=np.int64)  # each row's live candidates before any expansion
        self.k_max = int(self.k_caps.max())
        self.table_np = table
        self.table = tf.constant(table)
        self.budget = budget or Budget.from_config(space, SearchConfig())
        self.cost_model = CostModel(space, table, units=self.budget.units)
        self.weight_decay = float(weight_decay)
        self._seed = seed
        self._make_layers(space)
        self._add_arch_weights(space, k_init, alpha_stddev, seed)
        self._add_instruments(len(space.rows))
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.arch_updates = False
        self.arch_steps = 1
        self._trackers = {k: keras.metrics.Mean(name=k) for k in ("loss", "arch_loss", "cost_loss")}
        self._accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        self._arch_accuracy = keras.metrics.SparseCategoricalAccuracy(name="arch_accuracy")
        self.ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self(np.zeros((1, *space.input_shape), "float32"))  # builds every layer eagerly

    def _make_layers(self, space):
        """Each node's super-net layer, from its op, in the group its op names."""
        # The layer dicts and lists below are checkpoint paths (``conv_layers/0/kernel``, ...): an
        # op names the group its layer belongs to, so search checkpoints stay restorable.
        self._conv_layers, self._act_layers, self._other_layers, self.dense = {}, {}, {}, None
        self._dense_node = None
        self._layouts = self._node_layouts()
        max_ch = [sum(cap for _, cap in segs) for segs, _ in self._layouts]
        groups = {"conv": self._conv_layers, "act": self._act_layers, "other": self._other_layers}
        for i, node in enumerate(space.nodes):
            src_max, src_spatial = (max_ch[node.src[0]], self._layouts[node.src[0]][1]) if node.src else (0, 1)
            layer = node.kind.make_layer(node, self, src_max, src_spatial)
            if node.kind.layer_group == "dense":
                self.dense, self._dense_node = layer, i
            elif layer is not None:
                groups[node.kind.layer_group][i] = layer
        self.conv_layers = list(self._conv_layers.values())  # tracked by Keras
        self.act_layers = list(self._act_layers.values())
        self.other_layers = list(self._other_layers.values())

    def _add_arch_weights(self, space, k_init, alpha_stddev, seed):
        """alpha (N(0, alpha_stddev) on the live candidates, 0 elsewhere and on pinned rows), the live
        candidate counts, tau and the running width sums."""
        L = len(space.rows)
        frozen = np.array([r.frozen for r in space.rows], bool)
        k_rows = k_init.astype("int32")
        rng = np.random.default_rng(seed)
        init = np.zeros((L, MAX_CANDIDATES), "float32")
        init[:, :k_rows.max()] = rng.normal(0.0, alpha_stddev, size=(L, k_rows.max()))
        init[np.arange(MAX_CANDIDATES)[None, :] >= k_rows[:, None]] = 0.0
        init[frozen] = 0.0
        self.alpha = self.add_weight(name="alpha", shape=(L, MAX_CANDIDATES),
                                     initializer=keras.initializers.Constant(init))
        self.num_candidates = self.add_weight(
            name="num_candidates", shape=(L,), dtype="int32", trainable=False,
            initializer=keras.initializers.Constant(k_rows), aggregation="only_first_replica")
        self.tau = self.add_weight(name="tau", shape=(), trainable=False,
                                   initializer=keras.initializers.Constant(5.0))
        self.width_sum = self.add_weight(name="width_sum", shape=(L,), trainable=False, initializer="zeros")
        self.width_steps = self.add_weight(name="width_steps", shape=(), trainable=False, initializer="zeros")

    def _add_instruments(self, L):
        """The sums the arch steps' instruments accumulate (see below)."""
        # The architecture gradient's two parts, the cross-entropy's and the cost constraint's,
        # summed over the arch steps since the last reset (Fig. 4's channel preference is the CE
        # part: the cost part is monotone in width by construction).  The step all-reduces the
        # replicas' CE shares first, so every replica adds the same global gradient ("sum"
        # aggregation gave wrong totals here).
        self.alpha_ce_grad_sum = self.add_weight(name="alpha_ce_grad_sum", shape=(L, MAX_CANDIDATES),
                                                 trainable=False, initializer="zeros",
                                                 aggregation="only_first_replica")
        self.alpha_cost_grad_sum = self.add_weight(name="alpha_cost_grad_sum", shape=(L, MAX_CANDIDATES),
                                                   trainable=False, initializer="zeros",
                                                   aggregation="only_first_replica")
        self.alpha_grad_steps = self.add_weight(name="alpha_grad_steps", shape=(), trainable=False,
                                                initializer="zeros", aggregation="only_first_replica")
        # The arch steps' other instruments (take_arch_diagnostics), summed like the two above: steps
        # each alpha entry was live (an entry added mid-epoch is averaged over its own steps), the L2
        # norm per row of the CE and of the cost part, and steps each cost term pushed down / up.
        # A plain namespace keeps them out of the checkpoint: the log resets them before every
        # checkpoint, and a search checkpointed before they existed must still resume.
        add = lambda name, shape: self.add_weight(name=name, shape=shape, trainable=False,  # noqa: E731
                                                  initializer="zeros", aggregation="only_first_replica")
        self.cost_units = tuple(UNITS)  # the rows of cost_active_steps: every unit a budget can hold
        self.instruments = types.SimpleNamespace(
            live_steps=add("alpha_live_steps", (L, MAX_CANDIDATES)), grad_norm_sum=add("alpha_grad_norm_sum", (2, L)),
            cost_active_steps=add("cost_active_steps", (len(self.cost_units), 2)))

    def init_seed(self, node):
        """The integer seed of ``node``'s weight initialisation, or ``None`` for an unseeded net.

        Each layer gets its own seed, drawn from the net's seed and the node's name: a Keras
        initialiser with a fixed seed gives the same values for the same shape, so one shared seed
        would start every same-shape layer identical, and reseeding Keras's global generator
        would change the user's own random state.
        """
        if self._seed is None:
            return None
        return int(np.random.default_rng([int(self._seed), zlib.crc32(node.name.encode())]).integers(2**31 - 1))

    # ---------------------------------------------------------------- structure
    def _node_layouts(self):
        """Per node, ``(segments, spatial)``: where each row's channels sit in its output.

        A segment ``(rows, cap)`` is a block of channels that the rows in ``rows`` fill from
        its start (a residual add of several rows adds into the leading channels), ``cap``
        wide (the most any of them can emit).  A concatenation lays its inputs' segments side
        by side, each padded to its cap, so a consumer's kernel columns keep their meaning
        whatever widths are live.  ``spatial`` is the number of positions a flatten spreads
        every channel over (1 elsewhere).
        """
        out = []
        for node in self.space.nodes:
            out.append(node.kind.layout(node, [out[s] for s in node.src], self))
        return out

    def layout_offsets(self, node_index):
        """``(segments as (offset, rows), total channels, spatial)`` of a node's output."""
        segs, spatial = self._layouts[node_index]
        placed, offset = [], 0
        for rows, cap in segs:
            placed.append((offset, rows))
            offset += cap
        return placed, offset, spatial

    def padded(self, y, node_index):
        """``y`` with every segment padded to its cap (the fixed layout a concat or flatten needs)."""
        segs, _ = self._layouts[node_index]
        total = sum(cap for _, cap in segs)
        if len(segs) > 1:
            return y  # a concatenation is built padded already
        return tf.pad(y, [[0, 0]] * (len(y.shape) - 1) + [[0, total - tf.shape(y)[-1]]])

    def consumers(self):
        """``(op, layer, input layout)`` for every layer with weights per input channel.

        The layout is ``layout_offsets`` of the layer's input: conv, depthwise conv, BN, hidden
        dense layers and the classifier.
        """
        return [(node.kind, self.layer_of_node(i), self.layout_offsets(node.src[0]))
                for i, node in enumerate(self.space.nodes) if node.kind.reads_channels]

    def layer_of_node(self, index):
        """The search layer that computes node ``index`` of the space (``None`` for weightless ops)."""
        if index == self._dense_node:
            return self.dense
        return self._conv_layers.get(index) or self._other_layers.get(index) or self._act_layers.get(index)

    def producers(self, row):
        """The layers whose output width is row ``row`` (a conv and its tied shortcut, or a dense)."""
        return [self.layer_of_node(i) for i, n in enumerate(self.space.nodes) if n.row == row and n.kind.has_row]

    @property
    def arch_variables(self):
        return [self.alpha]

    @property
    def weight_variables(self):
        return [v for v in self.trainable_variables if v is not self.alpha]

    # ---------------------------------------------------------------- alpha
    def live_mask(self):
        return tf.range(MAX_CANDIDATES)[None, :] < self.num_candidates[:, None]

    def masked_alpha(self):
        return tf.where(self.live_mask(), self.alpha, _MASKED)

    def probs(self):
        """``softmax(alpha)`` over each row's live candidates (``[L, 16]``, zeros beyond ``K_l``)."""
        return tf.nn.softmax(self.masked_alpha(), axis=-1)

    def argmax_widths(self):
        """The winner-takes-all width of every row (``[L]`` int32)."""
        idx = tf.argmax(self.masked_alpha(), axis=-1, output_type=tf.int32)
        return tf.gather(self.table, idx, batch_dims=1)

    def sample(self):
        """One Gumbel pair sample: ``(widths [L, 2] int32, index [L, 2] int32, mix [L, 2])``; a row with
        one live candidate gets it twice, mixed ``(1/2, 1/2)``."""
        shape = tf.shape(self.alpha)
        mask = self.live_mask()
        tiny = 1e-20
        g1 = -tf.math.log(-tf.math.log(keras.random.uniform(shape, tiny, 1.0, seed=self.seed_generator)))
        g2 = -tf.math.log(-tf.math.log(keras.random.uniform(shape, tiny, 1.0, seed=self.seed_generator)))
        logits = (tf.nn.log_softmax(self.masked_alpha(), axis=-1) + g1) / self.tau
        logits = tf.where(mask, logits, _MASKED)
        keys = tf.where(mask, tf.nn.log_softmax(tf.stop_gradient(logits), axis=-1) + g2, _MASKED)
        index = tf.math.top_k(keys, k=2).indices
        # A row with one live candidate (a coarse --lane or --width_ratios grid) pairs it with itself,
        # as subnet_sample does: top_k's second pick would be a masked entry, a width not yet live.
        single = (self.num_candidates < 2)[:, None]
        index = tf.where(single, tf.repeat(index[:, :1], 2, axis=1), index)
        mix = tf.nn.softmax(tf.gather(logits, index, batch_dims=1), axis=-1)
        return tf.gather(self.table, index, batch_dims=1), index, mix

    def subnet_sample(self, widths):
        """The sample of one fixed sub-network: every row at ``widths[r]``, a live candidate of it.

        Both entries of a row's pair are that candidate, with mixing weights ``(1/2, 1/2)``, so
        each layer computes its candidate's own BN and no interpolation: the sub-net's forward
        (``forward(x, net.subnet_sample(widths))``) is the derived network at those widths, up to
        the super-net's residual adds of unequal widths (zero-padded, not projected).

        Args:
            widths: one width per row, each a live candidate of its row.

        Returns:
            ``(widths [L, 2] int32, index [L, 2] int32, mix [L, 2] float32)``, as :meth:`sample`.

        Raises:
            ValueError: a width is not a live candidate of its row (naming the row and its candidates).
        """
        k = self.num_candidates.numpy()
        index = []
        for r, w in enumerate(widths):
            live = [int(c) for c in self.table_np[r, :k[r]]]
            if int(w) not in live:
                raise ValueError(f"Width {int(w)} is not a live candidate of row {r} ({self.space.rows[r].name!r}). "
                                 f"Received: widths[{r}]={w!r}. Allowed: {live}.")
            index.append(live.index(int(w)))
        pair = lambda v, dtype: tf.constant(np.repeat(np.asarray(v)[:, None], 2, axis=1), dtype)  # noqa: E731
        return (pair([int(w) for w in widths], tf.int32), pair(index, tf.int32),
                tf.fill([len(widths), 2], 0.5))

    def add_weight(self, *args, **kwargs):
        # The super-net's own variables (alpha, tau, candidate counts, instruments) are read in float32
        # under every dtype policy: the Gumbel sampling and the cost model are not the network's compute.
        kwargs.setdefault("autocast", False)
        return super().add_weight(*args, **kwargs)

    # ---------------------------------------------------------------- forward
    def forward(self, x, sample, training=False):
        """``(logits, regularisation)`` of one forward with the given pair sample.

        The regularisation is the coupled L2 of the live weight slices the forward used (each
        op's ``l2``) and of the PACT clips.  The logits are in the compute dtype, the
        regularisation in float32.
        """
        run = Forward(sample, training, self)
        # The image in the compute dtype before any op (train_step calls forward, not __call__).
        x = tf.cast(x, self.compute_dtype)
        outs, reg = [], 0.0
        for i, node in enumerate(self.space.nodes):
            inputs = [outs[s] for s in node.src] or [x]
            layer = self.layer_of_node(i)
            outs.append(node.kind.call(node, layer, inputs, run))
            reg += node.kind.l2(node, layer, inputs, run)
        for act in self.act_layers:
            if getattr(act, "alpha", None) is not None and act.quantizer.alpha_l2:
                reg += act.quantizer.alpha_l2 * tf.square(act.alpha)
        return outs[-1], reg

    def call(self, x, training=False):
        return self.forward(x, self.sample(), training=training)[0]

    # ---------------------------------------------------------------- cost
    def cost_terms(self):
        """Expected and argmax cost in every unit the budget has an entry for (``expected_<unit>``,
        ``argmax_<unit>``) and the constraint loss ``sum lambda_u L_u`` over its constrained units
        (``cost_loss``), as float64 tensors."""
        names = [e.name for e in self.budget.entries]
        hard = tf.one_hot(tf.argmax(self.masked_alpha(), axis=-1), MAX_CANDIDATES, dtype=tf.float64)
        expected = self.cost_model.expected_units(self.probs(), names)
        argmax = self.cost_model.expected_units(hard, names)
        loss = tf.zeros((), tf.float64)
        for e in self.budget.constrained:
            loss += e.coefficient * constraint_loss(expected[e.name], argmax[e.name], e.low, e.high)
        out = {}
        for name in names:
            out[f"expected_{name}"], out[f"argmax_{name}"] = expected[name], argmax[name]
        return {**out, "cost_loss": loss}

    # ---------------------------------------------------------------- training
    def configure_optimizers(self, weight_optimizer, arch_optimizer, arch_weight_decay=1e-3, arch_steps=1,
                             arch_balance="shared"):
        """Sets and builds both optimizers (call inside the strategy scope, before ``fit``).

        ``arch_steps``: architecture steps per weight step; each takes its own slice of the
        architecture batch, so that batch must hold ``arch_steps`` times the weight batch.

        ``arch_balance``: ``shared`` (TAS) steps ``arch_optimizer`` on the sum of alpha's CE part,
        cost part and coupled decay; ``split`` steps ``arch_optimizer`` on the CE part and a twin
        of it (same class and settings, its own moments) on the cost part plus decay, and sums the
        two updates (:mod:`nce_tf.search.arch_balance`); ``arch_optimizer`` is then that pair.
        Both are built here: an optimizer built lazily inside a distributed step fails.
        """
        if arch_balance not in ARCH_BALANCES:
            raise ValueError(f"Invalid arch_balance. Received: arch_balance={arch_balance!r}. "
                             f"Allowed: {', '.join(ARCH_BALANCES)}.")
        if arch_balance == "split" and not isinstance(arch_optimizer, ArchOptimizerPair):
            arch_optimizer = ArchOptimizerPair.twin(arch_optimizer)
        # Loss scaling as Keras's compile sets it up for fit under mixed_float16: the weight step's
        # loss and the arch step's CE are backpropagated through float16 activations (the cost part
        # is computed in float64 off the network and needs none).
        policy = self.dtype_policy.name
        weight_optimizer = mixed_precision.loss_scaled(weight_optimizer, policy)
        if isinstance(arch_optimizer, ArchOptimizerPair):
            arch_optimizer = ArchOptimizerPair(mixed_precision.loss_scaled(arch_optimizer.ce, policy),
                                               arch_optimizer.cost)
        else:
            arch_optimizer = mixed_precision.loss_scaled(arch_optimizer, policy)
        self.weight_optimizer, self.arch_optimizer = weight_optimizer, arch_optimizer
        self.arch_balance = arch_balance
        self.arch_weight_decay = float(arch_weight_decay)
        self.arch_steps = int(arch_steps)
        weight_optimizer.build(self.weight_variables)
        arch_optimizer.build(self.arch_variables)
        self.compile(optimizer=weight_optimizer, jit_compile=False)

    def set_arch_updates(self, on):
        """Turns the architecture step on (search) or off (warm-up); rebuilds the step function."""
        if bool(on) != self.arch_updates:
            self.arch_updates = bool(on)
            if self.compiled:  # before compile, fit builds the function itself
                self.make_train_function(force=True)

    @property
    def metrics(self):
        return [*self._trackers.values(), self._accuracy, self._arch_accuracy]

    def train_step(self, data):
        (x_w, y_w), (x_a, y_a) = data[:2]  # train_on_batch appends a sample_weight slot
        # Under a strategy with R replicas every replica runs this step on 1/R of the global
        # batch and the optimizers SUM the replicas' gradients.  So every term is divided by R
        # once: the CE (a per-replica mean, by Keras's loss, which already scales it: the sum is
        # then the gradient of the global-batch mean), and the batch-independent terms (L2,
        # the cost constraint, alpha's coupled decay), which would otherwise count R times.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        weights = self.weight_variables
        with tf.GradientTape() as tape:
            sample = self.sample()
            logits, reg = self.forward(x_w, sample, training=True)
            ce = self.ce(y_w, logits)  # Keras: local mean / R
            loss = ce + tf.cast(reg, ce.dtype) / replicas
            scaled = self.weight_optimizer.scale_loss(loss)  # as Keras's train_step (mixed_float16)
        # apply unscales the gradients (and skips a non-finite step) when the optimizer scaled the loss.
        self.weight_optimizer.apply(tape.gradient(scaled, weights), weights)
        self.width_sum.assign_add(tf.cast(tf.reduce_max(sample[0], axis=1), tf.float32))
        self.width_steps.assign_add(1.0)
        self._trackers["loss"].update_state(ce * replicas)  # metrics average the local means
        self._accuracy.update_state(y_w, logits)
        if self.arch_updates:
            for x_k, y_k in zip(tf.split(x_a, self.arch_steps), tf.split(y_a, self.arch_steps)):
                self._arch_step(x_k, y_k, replicas)
        return {m.name: m.result() for m in self.metrics}

    def _arch_step(self, x_a, y_a, replicas):
        """One step on alpha: the CE's gradient through the network, the cost's apart (cheap).

        Under ``mixed_float16`` the CE is loss-scaled (the optimizer stepping it unscales, module
        doc); the parts added to the scaled CE gradient are scaled by the same factor first, so the
        update is the float32 one.  A step whose scaled CE gradient is not finite is skipped by the
        loss-scale optimizer and adds a zero CE gradient to the instruments.
        """
        split = self.arch_balance == "split"
        ce_optimizer = self.arch_optimizer.ce if split else self.arch_optimizer
        with tf.GradientTape() as tape:
            logits_a, _ = self.forward(x_a, self.sample(), training=True)
            ce_a = self.ce(y_a, logits_a)
            scaled = ce_optimizer.scale_loss(ce_a)
        scaled_grad = tape.gradient(scaled, self.alpha)
        ce_scale = mixed_precision.loss_scale(ce_optimizer)
        ce_grad = scaled_grad / ce_scale
        if isinstance(ce_optimizer, keras.optimizers.LossScaleOptimizer):
            ce_grad = tf.where(tf.reduce_all(tf.math.is_finite(ce_grad)), ce_grad, tf.zeros_like(ce_grad))
        with tf.GradientTape() as tape:
            terms = self.cost_terms()
        # The same on every replica; without a constrained unit (no budget) the cost loss is a
        # constant, whose gradient is None: a zero one.
        cost_grad = tape.gradient(terms["cost_loss"], self.alpha)
        cost_grad = tf.zeros_like(ce_grad) if cost_grad is None else tf.cast(cost_grad, ce_grad.dtype)
        live = tf.cast(self.live_mask(), ce_grad.dtype)
        self._record_arch_step(tf.distribute.get_replica_context().all_reduce("sum", ce_grad) * live,
                               cost_grad * live, live, terms)
        # TAS's Adam weight decay is coupled (added to the gradient); inactive entries stay put.
        rest = (cost_grad + self.arch_weight_decay * self.alpha) / replicas
        if split:
            rest = rest * mixed_precision.loss_scale(self.arch_optimizer.cost)
            self.arch_optimizer.apply_parts([scaled_grad * live], [rest * live], [self.alpha])
        else:
            self.arch_optimizer.apply([(scaled_grad + rest * ce_scale) * live], [self.alpha])
        self._trackers["arch_loss"].update_state(ce_a * replicas)
        self._trackers["cost_loss"].update_state(tf.cast(terms["cost_loss"], tf.float32))
        self._arch_accuracy.update_state(y_a, logits_a)

    def _record_arch_step(self, ce_grad, cost_grad, live, terms):
        """Adds one arch step to the sums :meth:`take_arch_diagnostics` reads.

        ``ce_grad`` is the global CE gradient (the replicas' shares all-reduced first, so every
        replica adds the same value: "sum" aggregation gave wrong totals here), ``cost_grad`` the
        cost's (the same on every replica), both zero beyond the live entries.
        """
        self.alpha_ce_grad_sum.assign_add(ce_grad)
        self.alpha_cost_grad_sum.assign_add(cost_grad)
        self.alpha_grad_steps.assign_add(1.0)
        self.instruments.live_steps.assign_add(live)
        self.instruments.grad_norm_sum.assign_add(tf.stack([tf.norm(ce_grad, axis=1), tf.norm(cost_grad, axis=1)]))
        self.instruments.cost_active_steps.assign_add(self._cost_directions(terms))

    def _cost_directions(self, terms):
        """``[len(cost_units), 2]``: per unit, ``[1, 0]`` when its constraint pushes the cost down this
        step (argmax above its band), ``[0, 1]`` when up (below it), zeros when it is inactive (inside
        the band, no budget, or a zero coefficient); the comparisons of ``constraint_loss``."""
        pushing = {e.name: e for e in self.budget.constrained if e.coefficient > 0}
        rows = []
        for name in self.cost_units:
            if name in pushing:
                current, e = terms[f"argmax_{name}"], pushing[name]
                rows.append(tf.cast(tf.stack([current > e.high, current < e.low]), tf.float32))
            else:
                rows.append(tf.zeros((2,), tf.float32))
        return tf.stack(rows)

    def test_step(self, data):
        x, y = data[0], data[1]
        logits = self(x, training=False)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        self._trackers["loss"].update_state(self.ce(y, logits) * replicas)  # undo Keras's 1/R
        self._accuracy.update_state(y, logits)
        return {m.name: m.result() for m in (self._trackers["loss"], self._accuracy)}

    def take_alpha_grads(self):
        """Mean architecture gradients per live candidate since the last call; resets the sums.

        Returns ``{"ce": [L][K_l], "cost": [L][K_l]}`` (empty lists before any architecture step):
        the cross-entropy's part and the cost constraint's part (with its coefficient) of the
        gradient of the architecture loss; the Adam step sees their sum plus alpha's decay.  Each
        entry is the mean over the steps in which it was live, and ``K_l`` counts the candidates
        live in at least one of them: an entry an expansion added after the last step is left
        out, one added mid-way is averaged over its own steps (:meth:`take_arch_diagnostics`,
        which this calls: it resets every instrument).
        """
        out = self.take_arch_diagnostics()
        return {"ce": out["alpha_grad_ce"], "cost": out["alpha_grad_cost"]}

    def take_arch_diagnostics(self):
        """The architecture steps' instruments since the last call (or :meth:`take_alpha_grads`); resets them.

        Returns a dict (lists per row ``r``, ``L`` rows; every list empty before any step):

        - ``alpha_grad_steps``: the architecture steps taken;
        - ``alpha_grad_ce``, ``alpha_grad_cost``: per row, the mean CE part and cost part of alpha's
          gradient per candidate, over the steps in which the candidate was live (candidates live
          in none are left out, see :meth:`take_alpha_grads`);
        - ``alpha_grad_norm_ce``, ``alpha_grad_norm_cost``: per row, the mean over the steps of the
          L2 norm of that part's live entries, ``mean_t ||g_t[r, :K_r(t)]||`` (not the norm of the
          mean: it measures each step's push, which cancels out in the mean when it is noise);
        - ``cost_active``: ``{unit: {"down": f, "up": f}}`` for every constrained unit of the budget
          (in the registry's order, :data:`~nce_tf.search.units.UNITS`): the fraction of the steps in which its constraint pushed the cost
          down (argmax above the band) and up (below it); ``down + up <= 1``, the rest of the steps
          the argmax sat in the band (a unit with a zero coefficient is never active).
        """
        steps = float(self.alpha_grad_steps.numpy())
        live = self.instruments.live_steps.numpy()
        counts = (live > 0).sum(axis=1)
        out = {"alpha_grad_steps": int(steps)}
        for key, var in (("ce", self.alpha_ce_grad_sum), ("cost", self.alpha_cost_grad_sum)):
            mean = var.numpy() / np.maximum(live, 1.0)
            out[f"alpha_grad_{key}"] = [[float(g) for g in row[:k]] for row, k in zip(mean, counts)] if steps else []
        norms = self.instruments.grad_norm_sum.numpy() / max(steps, 1.0)
        for i, key in enumerate(("ce", "cost")):
            out[f"alpha_grad_norm_{key}"] = [float(v) for v in norms[i]] if steps else []
        active = self.instruments.cost_active_steps.numpy() / max(steps, 1.0)
        budgeted = {e.name for e in self.budget.constrained}
        out["cost_active"] = ({unit: {"down": float(active[i, 0]), "up": float(active[i, 1])}
                               for i, unit in enumerate(self.cost_units) if unit in budgeted} if steps else {})
        for var in (self.alpha_ce_grad_sum, self.alpha_cost_grad_sum, self.alpha_grad_steps,
                    *vars(self.instruments).values()):
            var.assign(tf.zeros_like(var))
        return out

    def statistics_variables(self):
        """The layers' own non-trainable state: every BN's per-candidate running mean and variance.

        A Keras 3 model's lists of layers are no checkpoint dependencies and the weight optimizer holds
        only trainable variables, so a search checkpoint names these explicitly; the log's 1X
        read-out saves and restores them around its training-mode forward.
        """
        layers = [*self.conv_layers, *self.act_layers, *self.other_layers, self.dense]
        return [v for layer in layers if layer is not None for v in layer.non_trainable_variables]

    def mean_widths(self):
        """Per row, the mean conv output width (``C*``) the weight steps computed so far."""
        steps = max(float(self.width_steps.numpy()), 1.0)
        return (self.width_sum.numpy() / steps).tolist()
