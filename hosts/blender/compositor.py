"""The "Matte SDK" compositor group node, and wiring a plate and its matte into the scene's compositor.

The group takes an Image (the plate, or the straight foreground) and a Matte (float) and outputs the
premultiplied RGBA the compositor works in (Set Alpha, "Apply Mask"). Wired Image nodes feed it the
matte from their Alpha output: ``<image>.matte`` holds alpha in every channel, and the EXR matte
sequences written by the worker hold it in A alone.
"""

from __future__ import annotations

import bpy

GROUP = "Matte SDK"


def node_group() -> bpy.types.NodeTree:
    """The "Matte SDK" group node tree (made on first use)."""
    group = bpy.data.node_groups.get(GROUP)
    if group is not None and group.bl_idname == "CompositorNodeTree":
        return group
    group = bpy.data.node_groups.new(GROUP, "CompositorNodeTree")
    group.interface.new_socket("Image", in_out="INPUT", socket_type="NodeSocketColor")
    matte = group.interface.new_socket("Matte", in_out="INPUT", socket_type="NodeSocketFloat")
    matte.min_value, matte.max_value, matte.default_value = 0.0, 1.0, 1.0
    group.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
    inputs, outputs = group.nodes.new("NodeGroupInput"), group.nodes.new("NodeGroupOutput")
    set_alpha = group.nodes.new("CompositorNodeSetAlpha")
    set_alpha.inputs["Type"].default_value = "Apply Mask"
    inputs.location, set_alpha.location, outputs.location = (-300, 0), (0, 0), (300, 0)
    group.links.new(inputs.outputs["Image"], set_alpha.inputs["Image"])
    group.links.new(inputs.outputs["Matte"], set_alpha.inputs["Alpha"])
    group.links.new(set_alpha.outputs["Image"], outputs.inputs["Image"])
    return group


def _tree(scene: bpy.types.Scene) -> bpy.types.NodeTree:
    """The scene's compositing node group, made (with an Image output) if it has none."""
    tree = scene.compositing_node_group
    if tree is None:
        tree = bpy.data.node_groups.new(f"{scene.name} Compositing", "CompositorNodeTree")
        scene.compositing_node_group = tree
    if not any(item.item_type == "SOCKET" and item.in_out == "OUTPUT" for item in tree.interface.items_tree):
        tree.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
    return tree


def _node(tree: bpy.types.NodeTree, name: str, kind: str, location: tuple[float, float]) -> bpy.types.Node:
    node = tree.nodes.get(name)
    if node is None or node.bl_idname != kind:
        node = tree.nodes.new(kind)
        node.name = node.label = name
        node.location = location
    return node


def _artist_node(tree: bpy.types.NodeTree, image: bpy.types.Image) -> bpy.types.Node | None:
    """An Image node showing ``image`` that the artist made (not one of ours)."""
    return next(
        (
            n
            for n in tree.nodes
            if n.bl_idname == "CompositorNodeImage" and n.image == image and not n.name.startswith(GROUP)
        ),
        None,
    )


def _frames(node: bpy.types.Node, frames: tuple[int, int] | None, like: bpy.types.Node | None) -> None:
    """Frame settings of a sequence node: the plate node's, else file frame N at scene frame N."""
    if like is not None and like.image is not None and like.image.source == "SEQUENCE":
        node.frame_start, node.frame_offset, node.frame_duration = (
            like.frame_start,
            like.frame_offset,
            like.frame_duration,
        )
    elif frames is not None:
        first, count = frames
        node.frame_start, node.frame_offset, node.frame_duration = first, first - 1, count


def wire(
    scene: bpy.types.Scene,
    plate: bpy.types.Image,
    matte: bpy.types.Image,
    foreground: bpy.types.Image | None = None,
    frames: tuple[int, int] | None = None,
) -> bpy.types.Node:
    """Add (or update) plate → Matte SDK ← matte in the scene's compositor; returns the group node.

    The foreground, when given, replaces the plate as the colour. ``frames`` is (first, count) of a
    frame range. The group's output goes to the compositor's output unless that is already connected.
    """
    tree = _tree(scene)
    tag = plate.name
    plate_node = _artist_node(tree, plate)
    colour = _artist_node(tree, foreground or plate)
    if colour is None:
        colour = _node(tree, f"{GROUP} colour: {tag}", "CompositorNodeImage", (-500, 200))
        colour.image = foreground or plate
        _frames(colour, frames, plate_node)
    alpha = _node(tree, f"{GROUP} matte: {tag}", "CompositorNodeImage", (-500, -150))
    alpha.image = matte
    _frames(alpha, frames, plate_node)
    group = _node(tree, f"{GROUP}: {tag}", "CompositorNodeGroup", (-150, 50))
    group.node_tree = node_group()
    tree.links.new(colour.outputs["Image"], group.inputs["Image"])
    tree.links.new(alpha.outputs["Alpha"], group.inputs["Matte"])
    output = next((n for n in tree.nodes if n.bl_idname == "NodeGroupOutput"), None)
    if output is None:
        output = tree.nodes.new("NodeGroupOutput")
        output.location = (200, 50)
    if not output.inputs[0].is_linked:
        tree.links.new(group.outputs["Image"], output.inputs[0])
    return group
