"""condiff's networks in PyTorch, for training beyond one machine.

The U-Net and the classifier are transcribed from condiff's one definition
(models/unet.go) against a PyTorch backend of the same small set of
operations (models/ops.go), so the parameter names and shapes are the ones
condiff checkpoints and exports hold. Standard library, torch, numpy and onnx
only (Debian packages).
"""
