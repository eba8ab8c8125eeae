"""Everything that imports ``bpy``: building scenes in Blender and rendering them."""
import re
import sys

if "bpy" not in sys.modules:
    # A process spawned by one that had imported bpy (a Dask worker, say) inherits Blender's
    # script folders on sys.path; there `import bpy` would find Blender's inner bpy package
    # before the wheel's, and fail with "No module named '_bpy'".
    sys.path[:] = [p for p in sys.path if not re.search(r"[/\\]bpy[/\\]\d+\.\d+[/\\]scripts", p)]
