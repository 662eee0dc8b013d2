"""Datasets: create, edit, archive, delete; taxonomy, chunks and plans attached to them."""
