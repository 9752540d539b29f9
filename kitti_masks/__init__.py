"""KITTI Masks experiment (paper §5.2): frame-pair loader, convolutional encoder, contrastive solver
and the SlowVAE-protocol MCC evaluation, used by main_kitti.py."""
