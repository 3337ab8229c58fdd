"""How every nce-tf tool starts, parses its flags and fails.

``run(main)`` wraps ``absl.app.run`` so that bad usage never shows a traceback:

- a flag that does not parse or fails its validator (``--w_bits=9``, a missing
  ``--flagfile``) prints ``error: <absl's one-line reason>`` and exits with status 2;
- a :class:`nce_tf.errors.UsageError` raised by the tool (a missing dataset file, an
  unwritable work directory) prints ``error: <message>`` and exits with status 2;
- Ctrl-C exits with status 130 after saying where the run can be resumed from.

``--flagfile`` values are expanded first (:func:`nce_tf.cli.flagfiles.expand`): a path or a
preset name, nested flagfiles resolved from any working directory.

TensorFlow's C++ start-up chatter (oneDNN, CUDA probing) is kept off the terminal unless
the caller asks for TF's log lines with ``TF_CPP_MIN_LOG_LEVEL`` below 3 (0 shows them
all): those lines come from absl's C++ logger before it is initialised, which ignores that
variable, so tools call :func:`load_tensorflow`, which imports it with file descriptor 2
pointed at /dev/null, after they have validated their flags (a typo is reported in well
under a second, before TensorFlow loads).
"""

import os
import sys

from absl import app, flags

from nce_tf import onednn, provenance
from nce_tf.cli import flagfiles
from nce_tf.errors import UsageError

USAGE_EXIT = 2


def fail(message):
    """Prints a one-line usage error and exits with status 2."""
    text = " ".join(str(message).split())
    print(f"error: {text}", file=sys.stderr)
    sys.exit(USAGE_EXIT)


def reader_gone():
    """Stops quietly after the reader of stdout went away (`nce-tf presets | head`), as a shell tool does."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(1)


def _parse(argv):
    try:
        return flags.FLAGS(flagfiles.expand(argv))
    except UsageError as e:
        fail(e)
    except flags.Error as e:
        fail(str(e).removeprefix("ERROR:: "))


def tf_logs_wanted():
    """Whether the caller asked for TensorFlow's own log lines (``TF_CPP_MIN_LOG_LEVEL`` 0, 1 or 2)."""
    return os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3").strip() not in ("3", "")


def load_tensorflow():
    """Imports TensorFlow quietly; tools call it after validating their flags."""
    onednn.widen_primitive_cache()
    if tf_logs_wanted() or "tensorflow" in sys.modules:
        return
    # Level 3 set by the caller does not silence the lines logged before absl's C++ logger starts.
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


def run(main, argv=None):
    """Runs ``main(argv)`` as an absl program with nce-tf's error conventions.

    Args:
        main: the tool's ``main(argv)``; ``argv`` holds the program name and positional arguments.
        argv: the command line, program name first (default ``sys.argv``).
    """

    def guarded(argv):
        provenance.code_state()  # read now: the run records the code this process loaded (provenance)
        try:
            return main(argv)
        except UsageError as e:
            fail(e)
        except KeyboardInterrupt:
            print("interrupted: re-run the same command to resume from the last checkpoint",
                  file=sys.stderr)
            sys.exit(130)
        except BrokenPipeError:
            reader_gone()

    def quiet_absl(argv):
        # TensorFlow's checkpoint code logs INFO lines through absl on every save.
        from absl import logging

        logging.set_verbosity(logging.WARNING)
        return guarded(argv)

    app.run(quiet_absl, argv=argv, flags_parser=_parse)


def no_positional(argv):
    """Rejects stray positional arguments (absl passes them through in ``argv``)."""
    if len(argv) > 1:
        fail(f"Unexpected positional arguments. Received: {argv[1:]!r}. Flags take the form --name=value.")


def tool_configs(argv):
    """What ``search.py`` / ``nce.py`` start with: both configs validated, then TensorFlow loaded."""
    # the flag definitions of the tools that use them (absl flags are per command)
    from nce_tf.cli import config_flags

    no_positional(argv)
    config = config_flags.config_from_flags().validate()
    search = config_flags.search_config_from_flags().validate()
    load_tensorflow()
    return config, search


def require(*names):
    """Marks flags as required (checked at parse time, reported as one line)."""
    for name in names:
        flags.mark_flag_as_required(name)
