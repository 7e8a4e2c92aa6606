"""Host adapters (Blender …), the stdlib-only worker client, and the host plug-ins they install."""
