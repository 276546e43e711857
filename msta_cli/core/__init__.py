"""The core library: model, adapter, loss, data, training, evaluation. No CLI, no printing."""
