"""Native JAX implementation: a params pytree, a jitted Adagrad step, an optional scanned epoch."""
