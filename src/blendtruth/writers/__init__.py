"""Writers: numpy arrays of a View -> files (npz, PNG, the tutorial's d.npz). No bpy here."""
