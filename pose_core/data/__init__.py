"""Data: annotation loading, datasets, transforms and the synthetic world.

Modules are imported explicitly (for example `pose_core.data.synthetic`); this package file
imports nothing so that `import pose_core.data` stays cheap.
"""
