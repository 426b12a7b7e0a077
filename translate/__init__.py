"""Image-to-image translation: pix2pix, CycleGAN, CSGAN and transformer / U-Net GANs."""

__version__ = "0.1.0"


def load_translator(source, **options):
    """A callable translator: ``load_translator("checkpoints/horse2zebra")(PIL image) -> PIL image``.

    See translate.api.load_translator for the sources and keyword options.  The
    import happens here so that ``import translate`` stays cheap (no torch).
    """
    from translate.api import load_translator as load
    return load(source, **options)
