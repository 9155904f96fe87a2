"""Simulated speckle phantoms, image-quality metrics, and the demo that shows both on the bundled cine."""
