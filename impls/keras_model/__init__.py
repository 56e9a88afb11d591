"""One backend-agnostic Keras 3 model (keras.ops, keras_rs): keras-jax, keras-tf, keras-torch."""
