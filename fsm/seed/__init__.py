"""The image builders' seed tools: `metadata seed cpio|nocloud|inspect` and `plan --seed`.

They live in the agent, not beside it, so that they accept exactly what a guest accepts:
every check is the agent's own parser or validator (fsm/seed/evaluate.py), never a copy.
build.py writes seeds (providers/cpiowriter.py, providers/iso9660.py), inspect.py reads
them (isoreader.py for ISO images, which a guest mounts instead), render.py prints them.
Nothing here imports sim/: only `plan --seed` (fsm/plan.py) does, lazily.
"""
