"""``python -m nce_tf COMMAND [flags]`` is the ``nce-tf`` command (:mod:`nce_tf.commands`)."""

from nce_tf.commands import main

if __name__ == "__main__":
    main()
