"""Checkpoints of a training cell: capture state, serialize it, commit it to Drive, restore it."""
