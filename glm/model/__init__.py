"""The model: tokenizers, the Transformer, batching, log-likelihoods, generation, exported model directories."""
