"""Matte SDK for Nuke, start-up (GUI, ``nuke -x`` and ``nuke -t``): registers the farm callback.

Nuke runs this file when this folder is on its plug-in path (``nuke.pluginAddPath`` or ``NUKE_PATH``).
"""

import matte_sdk_nuke.farm

matte_sdk_nuke.farm.register()
