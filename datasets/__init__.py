"""Datasets of the 3DIdent experiments (SPEC §5): latent layout, faiss index, image folders."""
