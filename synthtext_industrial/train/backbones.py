"""Convolutional backbones that turn a one-channel image into a feature map.

The recognizer needs a sequence at least twice as long as its longest label (CTC
needs a step per character plus blanks between repeats), but Keras's ImageNet
backbones downsample by 32 in both directions. So past horizontal stride 8 their
stride-2 convolutions are rebuilt with height-only strides (2, 1), and the
padding in front of them widened to match: a line image of width W gives a
sequence of W / 8 steps at full backbone depth. Keras application models are
built with `weights=None` (nothing is downloaded) and take 0-255 pixel values.
"""
from __future__ import annotations

import keras
from keras import layers

BACKBONES = ("small", "mobilenetv3", "efficientnet-b0", "efficientnet-b1", "efficientnet-b2", "efficientnet-b3")
_EFFICIENTNETS = {
    "efficientnet-b0": keras.applications.EfficientNetB0,
    "efficientnet-b1": keras.applications.EfficientNetB1,
    "efficientnet-b2": keras.applications.EfficientNetB2,
    "efficientnet-b3": keras.applications.EfficientNetB3,
}


def check_backbone(name: str) -> None:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")


def horizontal_stride(name: str) -> int:
    """Input columns per sequence step."""
    check_backbone(name)
    return 4 if name == "small" else 8


def small_cnn(height: int, width: int) -> keras.Model:
    """A compact VGG-like CNN (about 0.4 M weights, 0.18 GMAC per 32x256 line) that trains on a laptop CPU."""
    inputs = keras.Input((height, width, 1), name="image")
    x = layers.Rescaling(1.0 / 255.0)(inputs)
    for convs, filters, pool in ((1, 32, (2, 2)), (1, 64, (2, 2)), (2, 96, (2, 1)), (2, 128, (2, 1))):
        for _ in range(convs):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.ReLU()(x)
        x = layers.MaxPooling2D(pool)(x)
    return keras.Model(inputs, x, name="small")


def height_only_strides(model: keras.Model, keep: int = 8) -> keras.Model:
    """A copy of `model` whose stride-2 convolutions past horizontal stride `keep` stride in height only."""
    changed: dict[str, tuple[int, int]] = {}
    stride = 1
    for layer in model.layers:
        strides = getattr(layer, "strides", None)
        if strides is not None and tuple(strides) == (2, 2) and hasattr(layer, "kernel_size"):
            if stride >= keep:
                changed[layer.name] = tuple(layer.kernel_size)
            else:
                stride *= 2

    def rebuild(layer):
        config = layer.get_config()
        if layer.name in changed:
            config["strides"] = (2, 1)
        elif layer.name.endswith("_pad") and layer.name[:-4] in changed:
            kernel_width = changed[layer.name[:-4]][1]
            (top, bottom), _ = config["padding"]
            config["padding"] = ((top, bottom), ((kernel_width - 1) // 2, kernel_width // 2))
        return layer.__class__.from_config(config)

    return keras.models.clone_model(model, clone_function=rebuild)


def build_backbone(name: str, height: int, width: int) -> keras.Model:
    """[B, height, width, 1] pixels 0-255 -> [B, h, width / horizontal_stride(name), C] features."""
    check_backbone(name)
    if height % 32 and name != "small":
        raise ValueError(f"the {name} backbone needs an input height that is a multiple of 32, got {height}")
    if width % horizontal_stride(name):
        raise ValueError(f"input width must be a multiple of {horizontal_stride(name)} for {name}, got {width}")
    if name == "small":
        return small_cnn(height, width)
    if name == "mobilenetv3":
        base = keras.applications.MobileNetV3Small(include_top=False, weights=None, input_shape=(height, width, 1),
                                                   include_preprocessing=True)
    else:
        base = _EFFICIENTNETS[name](include_top=False, weights=None, input_shape=(height, width, 1))
    return height_only_strides(base)
