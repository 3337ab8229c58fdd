"""The compression job behind ``nce-tf compress``: a trained network and a budget in, a smaller network out.

Phases (each one's wall and CPU time in ``DIR/times.json`` and the report):

1. ``setup``: the trained network loaded (a ``.keras`` file or a finished run's ``model.keras``) and
   adapted (:func:`nce_tf.adapt`; a model that does not adapt is a one-line error), the data checked
   against it, the budget (:mod:`nce_tf.compression.budget`) checked against the original's cost and
   against the narrowest width list the method allows, and for the L1 methods their widths chosen
   (:mod:`nce_tf.compression.l1`): every bad input fails here, before anything is written;
2. ``search`` (``method=nce``, or ``scratch`` of the search's widths): the width search from the
   trained weights, the search job of ``nce-tf search --init_from`` (:mod:`nce_tf.jobs.search`) in
   ``DIR/search/`` with the budget's ceilings (resumable as any search);
3. ``derive``: the network at those widths, its weights inherited (largest-L1 filters), PACT clips
   from statistics, BN statistics re-estimated (:mod:`nce_tf.compression.inherit`); ``scratch``: fresh;
4. ``finetune`` (``epochs >= 1``): a training of that network (:func:`nce_tf.jobs.run_training`
   with it as ``model_fn``, in ``DIR/finetune/``, resumable), distilled from the original
   (``kd_weight``, on by default);
5. ``export`` (``export=True``): ``DIR/export/`` by :func:`nce_tf.export.export_model` (``.keras``,
   SavedModel, int8 / int4 TFLite, model card);
6. ``report``: ``DIR/model.keras``, ``DIR/compress.json`` and ``DIR/report.md``
   (:mod:`nce_tf.compression.report`): accuracy before and after, costs against the budget, per-layer
   widths, time per phase, provenance.

``epochs=0`` stops after the derivation (a quick look at what the widths keep before any training).
``DIR/compress_config.json`` holds the settings; a re-run with the same settings resumes (a finished
search or fine-tuning is not redone; a finished compression only reports), other settings are refused
unless ``overwrite``.
"""

import dataclasses
import json
import os

import keras
import numpy as np

from nce_tf import data, provenance, seeds, sources
from nce_tf.compression import l1
from nce_tf.compression.budget import ceiling_budget, check_reachable, meets, narrowest_widths
from nce_tf.compression.config import check_budget_settings, check_train_config
from nce_tf.compression.inherit import calibrate_clips, inherited_model, reestimate_bn, scratch_model, supernet_of
from nce_tf.compression.report import write_report
from nce_tf.errors import UsageError
from nce_tf.export import export_model
from nce_tf.io_utils import atomic_write_json
from nce_tf.jobs.checkpoint import check_settings, remove_outputs
from nce_tf.jobs.search import run_search
from nce_tf.jobs.train import PACT_STATS_BATCHES, run_training
from nce_tf.search.candidates import search_table
from nce_tf.sources.user import PREFIX, file_sha256, load_keras_file
from nce_tf.train.config import prepare_workdir
from nce_tf.train.distill import load_teacher
from nce_tf.train.float_init import finished_model

SETTINGS_FILE, RESULT_FILE = "compress_config.json", "compress.json"
# Everything a compression writes: what --overwrite removes before starting afresh.
OUTPUTS = (SETTINGS_FILE, "search", "finetune", "model.keras", "export", RESULT_FILE, "report.md", "times.json")


@dataclasses.dataclass
class _Setup:
    """What the setup phase found: the trained network, its super-net, the data, budget and widths."""

    path: str
    trained: object
    net: object
    budget: object
    source: object
    widths: list = None
    teacher: str = ""


def _setup(tcfg, scfg, ccfg):
    received = f"trained={ccfg.trained!r}"
    path, _ = finished_model(ccfg.trained, "trained")
    trained = load_keras_file(path, received)
    source = sources.source_for(dataclasses.replace(tcfg, model=""))
    info = source.info
    shape, classes = tuple(trained.inputs[0].shape[1:]), trained.outputs[0].shape[-1]
    if shape != tuple(info.image_shape) or classes != info.num_classes:
        raise UsageError(f"The data does not fit the trained network: it takes {shape} images and has {classes} "
                         f"outputs, {info.name} has {tuple(info.image_shape)} images and {info.num_classes} classes. "
                         f"Received: {received}, dataset={tcfg.dataset!r}.")
    policy = tcfg.policy()
    # on the search's grid: a lane-8 search derives widths up to 2X rounded up, past a lane-1 table's 2n
    net = supernet_of(trained, policy, lane=scfg.lane, width_ratios=scfg.width_ratios)  # one line if it cannot adapt
    space = net.space
    budget = ceiling_budget(space, policy, scfg)
    kind = ccfg.scratch_widths if ccfg.method == "scratch" else ccfg.method
    if kind == "nce":
        table, _, _ = search_table(space, scfg.mode, scfg.tas_space, scfg.width_ratios)
        check_reachable(budget, space, narrowest_widths(space, table), "every searchable layer at its narrowest "
                        "candidate")
        widths = None  # the search's
    else:
        check_reachable(budget, space, narrowest_widths(space), "every searchable layer at one channel")
        fits = lambda w: meets(budget, space, w)  # noqa: E731
        pinned = [r.frozen for r in space.rows]
        widths = (l1.uniform_widths([r.n for r in space.rows], pinned, fits) if kind == "l1_uniform"
                  else l1.global_widths(l1.row_scores(space, trained), pinned, fits))
    teacher = ""
    if tcfg.kd_weight > 0:
        teacher = tcfg.teacher or path
        load_teacher(teacher, info.image_shape, info.num_classes)  # logits out, same images: checked now
    return _Setup(path, trained, net, budget, source, widths, teacher)


def settings_of(tcfg, scfg, ccfg, setup):
    """What defines a compression's result (``compress_config.json``): the three configs' settings,
    the trained network's file and SHA-256."""
    train = {k: v for k, v in tcfg.run_settings().items() if k not in ("model", "arch", "init_from")}
    return {"trained_file": setup.path, "trained_sha256": file_sha256(setup.path), **train,
            **{f"search.{k}": v for k, v in scfg.to_dict().items()}, **ccfg.to_dict()}


def _batches(source, tcfg, purpose, count, training=True):
    ds = data.make_pipeline(source.train if training else source.test, source.info, training=training,
                            batch_size=tcfg.batch_size, seed=seeds.stream_seed(tcfg.seed, purpose), epoch=0)
    return [x for x, _ in ds.take(count).as_numpy_iterator()] if count else ds


def accuracy(model, batches):
    """Top-1 accuracy of ``model`` (inference mode) over ``(images, labels)`` batches."""
    right = total = 0
    for x, y in batches:
        logits = np.asarray(model(x, training=False))
        right += int((logits.argmax(axis=-1) == np.asarray(y).reshape(-1)).sum())
        total += len(logits)
    return right / max(total, 1)


def _search(tcfg, scfg, setup, workdir, verbose):
    search_tcfg = dataclasses.replace(
        tcfg, workdir=os.path.join(workdir, "search"), model=PREFIX + setup.path, init_from=setup.path,
        teacher="", kd_weight=0.0, epochs=max(tcfg.epochs, 1), warmup_epochs=0)
    record = run_search(search_tcfg, scfg, verbose=verbose)
    return [int(w) for w in record["widths"]]


def run_compress(train_config, search_config, compress_config, verbose=True):
    """Compresses ``compress_config.trained`` to the budget (see the module doc).

    Args:
        train_config: a :class:`~nce_tf.train.TrainConfig`: work directory, data, bits, seed, and the
            fine-tuning (``epochs``, ``lr``, ``kd_weight``, ``kd_temperature``, ...).
        search_config: a :class:`~nce_tf.search.SearchConfig`: the budget, and the search of ``method=nce``.
        compress_config: a :class:`~nce_tf.compression.config.CompressConfig`.
        verbose: print progress lines.

    Returns:
        ``(model, result)``: the compressed Keras model and what ``compress.json`` holds.
    """
    tcfg = check_train_config(train_config)
    scfg = check_budget_settings(search_config)
    ccfg = compress_config.validate()
    clock = provenance.PhaseClock()
    clock.phase("setup")
    setup = _setup(tcfg, scfg, ccfg)
    workdir = prepare_workdir(tcfg.workdir)
    settings = settings_of(tcfg, scfg, ccfg, setup)
    settings_path = os.path.join(workdir, SETTINGS_FILE)
    resuming = check_settings(settings_path, settings, tcfg.overwrite, "compression")
    result_path = os.path.join(workdir, RESULT_FILE)
    if resuming and os.path.exists(result_path):
        if verbose:
            print(f"nce-tf: this compression has finished already -> {result_path}", flush=True)
        with open(result_path, encoding="utf-8") as f:
            return load_keras_file(os.path.join(workdir, "model.keras"), f"workdir={workdir!r}"), json.load(f)
    if not resuming:
        if tcfg.overwrite and os.path.exists(settings_path):
            remove_outputs(workdir, OUTPUTS)
        atomic_write_json(settings_path, settings)
    clock.attach(os.path.join(workdir, "times.json"), resume=resuming)
    try:
        return _run(tcfg, scfg, ccfg, setup, workdir, clock, verbose)
    finally:
        clock.flush()


def _run(tcfg, scfg, ccfg, setup, workdir, clock, verbose):
    source, net, space, budget = setup.source, setup.net, setup.net.space, setup.budget
    test = _batches(source, tcfg, "compress/test", 0, training=False)
    before = accuracy(setup.trained, test)
    widths = setup.widths
    if widths is None:
        clock.phase("search")
        widths = _search(tcfg, scfg, setup, workdir, verbose)
        if not meets(budget, space, widths):  # the search's repair keeps its ceilings; never trust, check
            raise UsageError(f"The search's widths {widths} cost {budget.costs(space, widths)}, above the budget "
                             f"({budget.describe()}). Allowed: a wider --tolerance.")
    clock.phase("derive")
    policy = tcfg.policy()
    fresh = ccfg.method == "scratch"
    if fresh:
        keras.utils.set_random_seed(seeds.structure_seed(tcfg.seed, space.model, widths))
        model = scratch_model(setup.trained, widths, policy, tcfg.weight_decay)
    else:
        model = inherited_model(setup.trained, widths, policy, tcfg.weight_decay, net=net)
    clips = calibrate_clips(model, _batches(source, tcfg, "compress/pact", PACT_STATS_BATCHES), seed=tcfg.seed) \
        if tcfg.pact_init == "stats" else {}
    reestimate_bn(model, _batches(source, tcfg, "compress/bn", ccfg.bn_batches))
    derived_accuracy = accuracy(model, test)
    if verbose:
        print(f"nce-tf: {ccfg.method} widths {widths}: accuracy {before:.4f} (original) -> {derived_accuracy:.4f} "
              f"(derived, BN re-estimated)", flush=True)
    finetune = None
    if tcfg.epochs:
        clock.phase("finetune")
        ft = dataclasses.replace(tcfg, workdir=os.path.join(workdir, "finetune"), model="", teacher=setup.teacher,
                                 pact_init="fixed")
        finetune = run_training(ft, model_fn=lambda **_: model)
        # The fine-tuned network as saved (a fine-tuning finished in an earlier sitting is not re-run).
        model = load_keras_file(os.path.join(ft.workdir, "model.keras"), f"workdir={ft.workdir!r}")
    final_accuracy = accuracy(model, test)
    clock.phase("report")
    model_path = os.path.join(workdir, "model.keras")
    model.save(model_path + ".tmp.keras")
    os.replace(model_path + ".tmp.keras", model_path)
    card = None
    if ccfg.export:
        clock.phase("export")
        card = _export(model, source, tcfg, widths, os.path.join(workdir, "export"), verbose)
    clock.phase("report")
    result = write_report(workdir, model=model, original=setup.trained, space=space, widths=widths,
                          budget=budget, policy=policy, float_bits=scfg.float_bits, tcfg=tcfg, scfg=scfg,
                          ccfg=ccfg, accuracy={"original": before, "derived": derived_accuracy,
                                               "compressed": final_accuracy},
                          finetune=finetune, export_card=card, pact_clips=clips,
                          provenance=provenance.record(clock), trained_file=setup.path)
    if verbose:
        print(f"nce-tf: compressed {os.path.basename(setup.path)} ({ccfg.method}): accuracy {before:.4f} -> "
              f"{final_accuracy:.4f}, MACs {result['costs']['compressed']['macs_ratio']:.3f}x, params "
              f"{result['costs']['compressed']['params_ratio']:.3f}x -> {workdir}/report.md", flush=True)
    return model, result


def _export(model, source, tcfg, widths, out_dir, verbose):
    take = lambda ds, n: [a.numpy() for a in next(iter(  # noqa: E731
        data.make_pipeline(ds.take(n), source.info, training=False, batch_size=n)))]
    calib = take(source.train, 256)[0]
    images, labels = take(source.test, 512)
    info = source.info
    metadata = {"widths": widths, "w_bits": tcfg.w_bits, "a_bits": tcfg.a_bits, "dataset": tcfg.dataset,
                "input": "float32 images normalised as in training: (x - mean) / std per channel, x on 0..255",
                "input_mean": list(info.mean), "input_std": list(info.std), "input_shape": list(info.image_shape)}
    return export_model(model, out_dir, calib, images, labels, metadata=metadata, verbose=verbose)
