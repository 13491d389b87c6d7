"""The on-call engineer's commands (`python -m chalicelib.ops`): recounts, verification, rebuilds and stream replay."""
