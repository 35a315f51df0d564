"""arithlab: a JAX/Flax lab for arithmetic and length-generalization experiments."""
