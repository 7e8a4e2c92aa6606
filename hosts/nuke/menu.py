"""Matte SDK for Nuke, GUI start-up: the "Matte SDK" toolbar menu with the MatteSDK node."""

import matte_sdk_nuke.node
import nuke

nuke.menu("Nodes").addMenu("Matte SDK").addCommand(matte_sdk_nuke.node.NODE, matte_sdk_nuke.node.CREATE_COMMAND)
