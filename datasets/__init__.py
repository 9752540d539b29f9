"""Datasets of the 3DIdent experiments (paper §5.3): latent layout, faiss index, image folders."""
