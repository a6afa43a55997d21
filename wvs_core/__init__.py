"""WVS core: the framework that plugins, the API, the scheduler and the executor are built on.

Plugin authors need one import::

    from wvs_core import hookimpl
"""

import pluggy

hookimpl = pluggy.HookimplMarker("wvs")

__all__ = ["hookimpl"]
