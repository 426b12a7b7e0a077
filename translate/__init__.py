"""Image-to-image translation: pix2pix, CycleGAN, CSGAN and transformer / U-Net GANs."""

__version__ = "0.1.0"
