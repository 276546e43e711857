"""Video decoding, frame sampling, batched transforms and datasets."""
