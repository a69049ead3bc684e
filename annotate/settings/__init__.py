"""Settings live in one module per environment; `base` is shared by all of them."""
