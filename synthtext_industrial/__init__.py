"""synthtext-industrial: synthetic product-code OCR images with exact ground truth.

    from synthtext_industrial import load_recipe, render_sample
    recipe = load_recipe("recipes/default.yaml")
    sample = render_sample(recipe, seed=0, index=0)
    sample.image, sample.mask, sample.lines, sample.to_dict()
"""
__version__ = "0.11.0"  # first: modules that import it may be imported by the ones below

from .crops import line_crop, line_crops
from .core.groundtruth import GT_SCHEMA, Char, Field, Line, Sample
from .recipe import Recipe, load_recipe, recipe_from_dict
from .core.config import RecipeError
from .render import encode_image, render_sample

__all__ = ["GT_SCHEMA", "Char", "Field", "Line", "Recipe", "RecipeError", "Sample", "encode_image",
           "line_crop", "line_crops", "load_recipe", "recipe_from_dict", "render_sample", "__version__"]
