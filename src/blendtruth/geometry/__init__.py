"""Pure-numpy geometry (no bpy): intrinsics and Blender's camera parameters (``camera``),
pose conventions (``frames``), pixel rays, depth and projection (``rays``), camera models
(``projection``), normals from depth (``normals``), point clouds (``pointcloud``), and
correspondence between views (``correspondence``, ``reproject``)."""
