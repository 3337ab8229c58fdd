"""Errors that nce-tf reports to a user as one line, never as a traceback.

Library code raises :class:`UsageError` for anything the caller can fix (an unknown
model name, a bit width outside the allowed set, a dataset file that is missing or
malformed).  The command-line tools catch it, print ``error: <message>`` and exit with
status 2, the conventional status for bad usage.  The message names the offending
value the way Keras does ("Received: w_bits=9") and says what is allowed.
"""


class UsageError(ValueError):
    """A problem with the caller's input, explained in one line."""
