"""The one exception type blendtruth raises for bad input or an unusable environment."""


class BlendtruthError(Exception):
    """A user-facing error: the message names the file or option and what is wrong.

    The CLI prints it as one line and exits with code 2.
    """


class BlendtruthWarning(UserWarning):
    """Something the user should know that does not stop the run (e.g. a missing texture).

    The CLI prints it as one line on stderr."""
