"""tinysnn: a pure-PyTorch simulator and optimization framework for STDP-learned spiking networks."""

__version__ = "0.1.0"
