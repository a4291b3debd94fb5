"""What is rendered, as pure data (no bpy): lights (``lights``), multi-object placement
(``placement``, ``multiscene``) and camera sets (``samplers``, ``rigs``,
``model_cameras``)."""
