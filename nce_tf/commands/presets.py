r"""List the presets: the flagfiles shipped with nce-tf, each usable as ``--flagfile=NAME``.

Example:

    nce-tf presets                      # NAME  first comment line of the file, one per line
    nce-tf presets --paths              # NAME  the file it reads
    nce-tf nce --flagfile=quickstart --workdir=runs/quickstart

A name is the file's path under the repository's flags/ without .flags; a --flagfile value that
is an existing file is read as that file instead (nce_tf/cli/flagfiles.py). From a checkout,
python tools/presets.py lists the same.
"""

from absl import flags

from nce_tf import cli
from nce_tf.cli import flagfiles

flags.DEFINE_boolean("paths", False, "Print each preset's file instead of its first comment line.")
FLAGS = flags.FLAGS


def main(argv):
    cli.no_positional(argv)
    presets = flagfiles.list_presets()
    width = max(len(name) for name, _ in presets)
    for name, about in presets:
        text = flagfiles.resolve(name) if FLAGS.paths else about
        print(f"{name:<{width}}  {text}".rstrip())
