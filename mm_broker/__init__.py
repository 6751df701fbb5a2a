"""mm_broker: a multi-messenger counterpart broker.

The version below is the single source of the package version
(MAJOR.MINOR.PATCH); everything else reads it from here.
"""

__version__ = "0.1.0"
