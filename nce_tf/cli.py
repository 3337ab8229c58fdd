"""How every nce-tf tool starts, parses its flags and fails.

``run(main)`` wraps ``absl.app.run`` so that bad usage never shows a traceback:

- a flag that does not parse or fails its validator (``--w_bits=9``, a missing
  ``--flagfile``) prints ``error: <absl's one-line reason>`` and exits with status 2;
- a :class:`nce_tf.errors.UsageError` raised by the tool (a missing dataset file, an
  unwritable work directory) prints ``error: <message>`` and exits with status 2;
- Ctrl-C exits with status 130 after saying where the run can be resumed from.

TensorFlow's C++ start-up logging is silenced (``TF_CPP_MIN_LOG_LEVEL=3``) unless the
caller set that variable: set it to 0 to see TF's own log lines.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags  # noqa: E402

from nce_tf.errors import UsageError  # noqa: E402

USAGE_EXIT = 2


def fail(message):
    """Prints a one-line usage error and exits with status 2."""
    text = " ".join(str(message).split())
    print(f"error: {text}", file=sys.stderr)
    sys.exit(USAGE_EXIT)


def _parse(argv):
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        fail(e)


def run(main):
    """Runs ``main(argv)`` as an absl program with nce-tf's error conventions."""

    def guarded(argv):
        try:
            return main(argv)
        except UsageError as e:
            fail(e)
        except KeyboardInterrupt:
            print("interrupted: re-run the same command to resume from the last checkpoint",
                  file=sys.stderr)
            sys.exit(130)

    app.run(guarded, flags_parser=_parse)


def require(*names):
    """Marks flags as required (checked at parse time, reported as one line)."""
    for name in names:
        flags.mark_flag_as_required(name)
