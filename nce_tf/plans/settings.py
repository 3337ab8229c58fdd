"""The run settings a plan directory holds, checked on every sitting: one setting of runs per directory.

The file (a study's ``study_config.json``) holds ``settings``, nested mappings of what every run
shares (``{"train": {...}, "search": {...}, ...}``), beside anything the owner records that may
change between sittings (a study's ``searches``, ``trainings``).  Settings are compared one by one
as flat keys (``train.epochs``), and the first that differs is named.

Example::

    check_settings("runs/study/study_config.json", {"train": {"epochs": 10}}, {"study": {...}}, "study",
                   "methods, searches, trainings and seeds may change")
"""

import json
import os

from nce_tf.errors import UsageError
from nce_tf.io_utils import atomic_write_json


def flat(settings, prefix=""):
    """``{"train": {"epochs": 3}, "tas": ""}`` -> ``{"train.epochs": 3, "tas": ""}``."""
    out = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def check_settings(path, settings, extra, name, may_change):
    """Refuses ``settings`` unlike those ``path`` holds (one line naming the first difference); then
    writes ``{**extra, "settings": settings}`` to ``path``.

    Args:
        path: the plan's settings file; absent on the first sitting.
        settings: what every run shares, as nested mappings.
        extra: what the file also records and may change (not compared).
        name: what runs in the directory (``"study"``), for the message.
        may_change: what the message says may change instead.
    """
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            saved, now = flat(json.load(f).get("settings", {})), flat(json.loads(json.dumps(settings, default=str)))
        for key in sorted(set(saved) | set(now)):
            if saved.get(key) != now.get(key):
                raise UsageError(f"The {name} in this work directory ran its runs with {key}={saved.get(key)!r}. "
                                 f"Received: {key}={now.get(key)!r}, workdir={os.path.dirname(path)!r}. Allowed: "
                                 f"the same run settings, or another --workdir ({may_change}).")
    atomic_write_json(path, {**extra, "settings": settings})
