"""Pure helpers for the Slicer module (no Slicer, Qt or VTK imports): voxel arrays to frames, runs, the fine-tuning worker."""
