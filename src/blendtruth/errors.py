"""The one exception type blendtruth raises for bad input or an unusable environment."""


class BlendtruthError(Exception):
    """A user-facing error: the message names the file or option and what is wrong.

    The CLI prints it as one line and exits with code 2.
    """
