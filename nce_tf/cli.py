"""How every nce-tf tool starts, parses its flags and fails.

``run(main)`` wraps ``absl.app.run`` so that bad usage never shows a traceback:

- a flag that does not parse or fails its validator (``--w_bits=9``, a missing
  ``--flagfile``) prints ``error: <absl's one-line reason>`` and exits with status 2;
- a :class:`nce_tf.errors.UsageError` raised by the tool (a missing dataset file, an
  unwritable work directory) prints ``error: <message>`` and exits with status 2;
- Ctrl-C exits with status 130 after saying where the run can be resumed from.

TensorFlow's C++ start-up chatter (oneDNN, CUDA probing) is kept off the terminal unless
the caller set ``TF_CPP_MIN_LOG_LEVEL`` (set it to 0 to see TF's own log lines): those
lines come from absl's C++ logger before it is initialised, which ignores that variable,
so tools call :func:`load_tensorflow`, which imports it with file descriptor 2 pointed
at /dev/null, after they have validated their flags (a typo is reported in well under a
second, before TensorFlow loads).
"""

import os
import sys

from absl import app, flags

from nce_tf.errors import UsageError

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
        fail(str(e).removeprefix("ERROR:: "))


def load_tensorflow():
    """Imports TensorFlow quietly; tools call it after validating their flags."""
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ or "tensorflow" in sys.modules:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


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

    def quiet_absl(argv):
        # TensorFlow's checkpoint code logs INFO lines through absl on every save.
        from absl import logging

        logging.set_verbosity(logging.WARNING)
        return guarded(argv)

    app.run(quiet_absl, flags_parser=_parse)


def no_positional(argv):
    """Rejects stray positional arguments (absl passes them through in ``argv``)."""
    if len(argv) > 1:
        fail(f"Unexpected positional arguments. Received: {argv[1:]!r}. Flags take the form --name=value.")


def tool_configs(argv):
    """What ``search.py`` / ``nce.py`` start with: both configs validated, then TensorFlow loaded."""
    from nce_tf import tool_flags

    no_positional(argv)
    config = tool_flags.config_from_flags().validate()
    search = tool_flags.search_config_from_flags().validate()
    load_tensorflow()
    return config, search


def require(*names):
    """Marks flags as required (checked at parse time, reported as one line)."""
    for name in names:
        flags.mark_flag_as_required(name)
