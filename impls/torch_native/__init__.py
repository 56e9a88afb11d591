"""Native PyTorch implementation: nn.Embedding, nn.Linear, optim.Adagrad; eager or torch.compile."""
