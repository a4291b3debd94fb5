"""Datasets at scale: many models, worker processes, a durable manifest, shards, Ray.

Flow: sources -> shard -> skip what the manifest says is done -> executor (local worker
processes or Ray) renders each model into a temporary folder renamed into place ->
manifest record -> index and summary.
"""
