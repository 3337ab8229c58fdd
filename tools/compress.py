#!/usr/bin/env python
"""`nce-tf compress` from a checkout: the tool is in nce_tf/commands/compress.py."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

if __name__ == "__main__":
    from nce_tf.commands import launch

    launch("compress")
